"""Upbit hourly candles: `GET /v1/candles/minutes/60`, newest first, paged backwards with `to`.

Bithumb's v1 API copies this format (and the exclusive `to`), so the page parser and the backward
pager here are shared with `bithumb.py`.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable


from .base import Candle, ExchangeError, Market, closed_since, make_candle, utc_hour_floor
from .http import ApiClient

V1_PATH = "/v1/candles/minutes/60"
V1_PAGE_SIZE = 200  # the API's maximum `count`
# A guard against an API that ignores `to` and would page forever; 1000 pages of 200 hours is ~22 years.
MAX_PAGES = 1000


def v1_market_code(market: Market) -> str:
    """Upbit and Bithumb v1 spell ETH-KRW as KRW-ETH."""
    return f"{market.quote}-{market.base}"


def parse_v1_page(body: Any, *, code: str, where: str) -> list[Candle]:
    """Parse one v1 page (a JSON list of candle objects); any bad row raises, naming it."""
    if not isinstance(body, list):
        raise ExchangeError(f"{where}: expected a JSON list of candles, got {type(body).__name__}")
    candles = []
    for i, obj in enumerate(body):
        at = f"{where} row {i}"
        if not isinstance(obj, dict):
            raise ExchangeError(f"{at}: expected a candle object, got {type(obj).__name__}")
        if obj.get("market") != code:
            raise ExchangeError(f"{at}: market {obj.get('market')!r}, asked for {code!r}")
        open_time = _parse_utc(obj.get("candle_date_time_utc"), at)
        candles.append(make_candle(
            open_time, obj.get("opening_price"), obj.get("high_price"), obj.get("low_price"),
            obj.get("trade_price"), obj.get("candle_acc_trade_volume"),
            where=f"{at} ({open_time:%Y-%m-%dT%H:%MZ})",
        ))
    return candles


def _parse_utc(text: Any, where: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ExchangeError(f"{where}: candle_date_time_utc {text!r} is not a time") from None
    # The field is UTC without an offset; accept an explicit offset too.
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def page_back(
    fetch_page: Callable[[datetime], list[Candle]],
    *,
    first_to: datetime,
    since: datetime | None,
    where: str,
    page_size: int = V1_PAGE_SIZE,
    known: datetime | None = None,
    max_pages: int = MAX_PAGES,
    pause: float = 0.0,
) -> list[Candle]:
    """Call `fetch_page(to)` (the `page_size` candles before `to`) backwards until `since` is covered.

    since=None takes one page. The exchange's data may end before `since` (the market did not exist
    yet), and it says so the one way this API can: a short page, then an empty one. Anything else
    that stops the paging early is a failed fetch and raises, because a history returned short
    would leave a hole that the next ingest, which starts from the newest stored hour, never
    refills:
    - an empty page right after a full one (the market's first candle exactly on a page boundary
      looks the same, but page boundaries move with every hour, so the next run tells them apart);
    - a short or empty page before reaching `known`, a time the caller already holds a candle of
      (so the exchange had it).
    """
    candles: list[Candle] = []
    to = first_to
    previous_full = False
    for _ in range(max_pages):
        page = fetch_page(to)
        if not page:
            if known is not None and to > known:
                raise ExchangeError(f"{where}: empty page for to={to:%Y-%m-%dT%H:%MZ}, although the store holds "
                                    f"candles at {known:%Y-%m-%dT%H:%MZ}: a failed fetch, retried next run")
            if previous_full:
                raise ExchangeError(f"{where}: empty page for to={to:%Y-%m-%dT%H:%MZ} right after a full page of "
                                    f"{page_size}: a failed fetch (the start of the data would end a short "
                                    "page), retried next run")
            return candles
        oldest = min(c.open_time for c in page)
        if oldest >= to:
            raise ExchangeError(f"{where}: page for to={to:%Y-%m-%dT%H:%MZ} did not go back in time")
        candles.extend(page)
        if since is None or oldest <= since:
            return candles
        if len(page) < page_size and known is not None and oldest > known:
            raise ExchangeError(f"{where}: page for to={to:%Y-%m-%dT%H:%MZ} has {len(page)} of {page_size} "
                                f"candles and ends at {oldest:%Y-%m-%dT%H:%MZ}, although the store holds candles "
                                f"at {known:%Y-%m-%dT%H:%MZ}: a failed fetch, retried next run")
        previous_full = len(page) >= page_size
        to = oldest
        time.sleep(pause)
    raise ExchangeError(f"{where}: {max_pages} pages did not reach back to {since:%Y-%m-%dT%H:%MZ}")


class UpbitClient(ApiClient):
    """Upbit's public quotation API. `pause` spaces back-fill pages under Upbit's per-second limit."""

    default_name = "upbit"

    def fetch(self, market: Market, since: datetime | None, now: datetime, *,
              known: datetime | None = None) -> list[Candle]:
        code = v1_market_code(market)

        def fetch_page(to: datetime) -> list[Candle]:
            # `to` is exclusive; Upbit reads an explicit offset, so send UTC with "Z".
            params = {"market": code, "count": V1_PAGE_SIZE, "to": to.strftime("%Y-%m-%dT%H:%M:%SZ")}
            body = self.get(V1_PATH, params, endpoint=f"{V1_PATH} {code}")
            return parse_v1_page(body, code=code, where=f"{self.name} {V1_PATH} {code} (to={params['to']})")

        # Starting `to` at the current hour leaves out the open candle: every row fetched is usable.
        candles = page_back(fetch_page, first_to=utc_hour_floor(now), since=since, known=known,
                            where=f"{self.name} {V1_PATH} {code}", max_pages=self.max_pages, pause=self.pause)
        return closed_since(candles, since, now)

