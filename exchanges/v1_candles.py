"""The v1 candle API that Upbit defined and Bithumb copied: `/v1/candles/minutes/{unit}` and
`/v1/candles/days`, JSON objects newest first, at most 200 per page, paged backwards with an
exclusive `to`. The two exchanges differ only in how they read a `to` without an offset (Upbit: UTC;
Bithumb: KST), so each client says how to write it, and shares the paths, the parser and the pager.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

from core.grid import HOURLY, CandleGrid
from core.intervals import minutes_of

from .base import Candle, ExchangeError, Market, make_candle
from .http import ApiClient
from .registry import V1_MINUTES, grid_of, offered


def v1_endpoint(interval: str) -> tuple[str, int | None]:
    """The endpoint of an interval's native candles and the `unit` its rows carry: minutes under a
    day (`/v1/candles/minutes/240`, unit 240), `/v1/candles/days` for a day (its rows carry none)."""
    minutes = minutes_of(interval)
    return ("/v1/candles/days", None) if minutes == 1440 else (f"/v1/candles/minutes/{minutes}", minutes)


# Our interval -> its endpoint and unit, for every supported interval the v1 API offers.
V1_PATHS: dict[str, tuple[str, int | None]] = {name: v1_endpoint(name) for name in offered(V1_MINUTES)}
V1_PAGE_SIZE = 200  # the API's maximum `count`
# A guard against an API that ignores `to` and would page forever; 1000 pages of 200 candles are ~22
# years of hours, ~5.7 years of 15-minute candles.
MAX_PAGES = 1000


def v1_market_code(market: Market) -> str:
    """Upbit and Bithumb v1 spell ETH-KRW as KRW-ETH."""
    return f"{market.quote}-{market.base}"


def v1_path(market: Market, exchange: str) -> tuple[str, int | None]:
    try:
        return V1_PATHS[market.interval]
    except KeyError:
        raise ExchangeError(f"{exchange}: no v1 candles of interval {market.interval!r} "
                            f"(it serves {', '.join(V1_PATHS)})") from None


def parse_v1_page(body: Any, *, code: str, where: str, grid: CandleGrid = HOURLY,
                  unit: int | None = 60) -> list[Candle]:
    """Parse one v1 page (a JSON list of candle objects); any bad row raises, naming it: a row of
    another market or another `unit` than asked for, or one whose open time is not on `grid`."""
    if not isinstance(body, list):
        raise ExchangeError(f"{where}: expected a JSON list of candles, got {type(body).__name__}")
    candles = []
    for i, obj in enumerate(body):
        at = f"{where} row {i}"
        if not isinstance(obj, dict):
            raise ExchangeError(f"{at}: expected a candle object, got {type(obj).__name__}")
        if obj.get("market") != code:
            raise ExchangeError(f"{at}: market {obj.get('market')!r}, asked for {code!r}")
        # Recorded bodies carry `unit` as a number, ccxt's fixtures as a string: compare the text.
        if unit is not None and "unit" in obj and str(obj["unit"]) != str(unit):
            raise ExchangeError(f"{at}: unit {obj['unit']!r}, asked for {unit}-minute candles")
        open_time = _parse_utc(obj.get("candle_date_time_utc"), at)
        candles.append(make_candle(
            open_time, obj.get("opening_price"), obj.get("high_price"), obj.get("low_price"),
            obj.get("trade_price"), obj.get("candle_acc_trade_volume"),
            where=f"{at} ({open_time:%Y-%m-%dT%H:%MZ})", grid=grid,
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
    would leave a hole that the next ingest, which starts from the newest stored candle, never
    refills:
    - an empty page right after a full one (the market's first candle exactly on a page boundary
      looks the same, but page boundaries move with every candle, so the next run tells them apart);
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


def page_back_v1(client: ApiClient, market: Market, *, first_to: datetime, since: datetime | None,
                 known: datetime | None, write_to: Callable[[datetime], str], to_note: str = "") -> list[Candle]:
    """`market`'s native candles before `first_to`, back to `since`, from `client`'s v1 endpoint
    (`page_back`'s rules). `write_to` spells a `to` time the way this exchange reads it; `to_note`
    follows it in error messages (" KST")."""
    code = v1_market_code(market)
    path, unit = v1_path(market, client.name)
    where = f"{client.name} {path} {code}"

    def fetch_page(to: datetime) -> list[Candle]:
        params = {"market": code, "count": V1_PAGE_SIZE, "to": write_to(to)}
        body = client.get(path, params, endpoint=f"{path} {code}")
        return parse_v1_page(body, code=code, where=f"{where} (to={params['to']}{to_note})", grid=grid_of(market),
                             unit=unit)

    return page_back(fetch_page, first_to=first_to, since=since, known=known, where=where,
                     max_pages=client.max_pages, pause=client.pause)
