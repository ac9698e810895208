"""Bithumb hourly candles.

Regular updates use the public candlestick endpoint, whose rows are `[ms, open, CLOSE, HIGH, LOW,
volume]` (not OHLC: code that assumes OHLC stores the high as the close) and which returns only the
latest window. When `since` is older than that window, the gap is back-filled from the v1 API, which
copies Upbit's format; its `to` is exclusive and read as naive KST.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


from .base import HOUR, Candle, ExchangeError, Market, candles_from_ms_rows, closed_since, utc_hour_floor
from .http import ApiClient
from .upbit import V1_PATH, V1_PAGE_SIZE, page_back, parse_v1_page, v1_market_code

KST = timedelta(hours=9)


def public_path(market: Market) -> str:
    return f"/public/candlestick/{market.base}_{market.quote}/1h"


def parse_public(body: Any, *, where: str) -> list[Candle]:
    """Parse a `/public/candlestick` body; any bad row raises, naming it."""
    if not isinstance(body, dict) or body.get("status") != "0000":
        status = body.get("status") if isinstance(body, dict) else None
        message = body.get("message", "(no message)") if isinstance(body, dict) else type(body).__name__
        raise ExchangeError(f"{where}: status {status!r}: {message}")
    rows = body.get("data")
    if not isinstance(rows, list):
        raise ExchangeError(f"{where}: `data` is {type(rows).__name__}, expected a list of rows")
    # Bithumb's order is open, CLOSE, HIGH, LOW: reading it as OHLC stores the high as the close.
    return candles_from_ms_rows(rows, where=where, layout="ochlv")


class BithumbClient(ApiClient):
    """Bithumb's public API. `pause` spaces v1 back-fill pages."""

    default_name = "bithumb"

    def fetch(self, market: Market, since: datetime | None, now: datetime, *,
              known: datetime | None = None) -> list[Candle]:
        path = public_path(market)
        body = self.get(path, None)
        window = parse_public(body, where=f"{self.name} {path}")
        oldest = min((c.open_time for c in window), default=None)
        if since is None or (oldest is not None and oldest <= since + HOUR):
            return closed_since(window, since, now)
        # The window starts after `since`: fill the hours before it, ending where the window begins
        # (or at `now`, when a gap repair asks about hours older than the window).
        first_to = min(oldest, utc_hour_floor(now)) if oldest else utc_hour_floor(now)
        older = self._page_back_v1(market, first_to=first_to, since=since, known=known)
        return closed_since(window + older, since, now)

    def _page_back_v1(self, market: Market, *, first_to: datetime, since: datetime,
                      known: datetime | None) -> list[Candle]:
        code = v1_market_code(market)

        def fetch_page(to: datetime) -> list[Candle]:
            # Bithumb reads an offset-less `to` as KST; sending KST wall time avoids a 9-hour hole.
            params = {"market": code, "count": V1_PAGE_SIZE, "to": (to + KST).strftime("%Y-%m-%d %H:%M:%S")}
            body = self.get(V1_PATH, params, endpoint=f"{V1_PATH} {code}")
            return parse_v1_page(body, code=code, where=f"{self.name} {V1_PATH} {code} (to={params['to']} KST)")

        return page_back(fetch_page, first_to=first_to, since=since, known=known,
                         where=f"{self.name} {V1_PATH} {code}", max_pages=self.max_pages, pause=self.pause)
