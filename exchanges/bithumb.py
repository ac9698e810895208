"""Bithumb candles of every interval.

Hourly candles come first from the public candlestick endpoint (`/public/candlestick/{B}_{Q}/1h`),
whose one request holds the latest window, so a regular hourly update costs one call; its rows are
`[ms, open, CLOSE, HIGH, LOW, volume]` (not OHLC: code that assumes OHLC stores the high as the
close). When `since` is older than that window, the hours before it come from the v1 API.

15-minute, 4-hour and day candles come from the v1 API alone (`/v1/candles/minutes/15|240`,
`/v1/candles/days`): the public endpoint has no 15m or 4h candles, and its 24h window cannot be
paged back, while v1's days page back with the same parser and pager as every other interval.
The v1 API copies Upbit's format (see v1_candles.py); its `to` is exclusive and read as naive KST.

Bithumb's day begins at 00:00 KST: its day candles open at 15:00 UTC, its 4h candles at 03:00,
07:00, ... UTC, and they are stored with those UTC open times.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from core.grid import HOUR, HOURLY

from .base import Candle, ExchangeError, Market, candles_from_ms_rows, closed_since
from .http import ApiClient
from .registry import grid_of
from .v1_candles import page_back_v1

KST = timedelta(hours=9)
# The intervals taken from the public endpoint, in its spelling; the others come from v1 only.
PUBLIC_INTERVALS = {"1h": "1h"}


def public_path(market: Market) -> str:
    return f"/public/candlestick/{market.base}_{market.quote}/{PUBLIC_INTERVALS[market.interval]}"


def parse_public(body: Any, *, where: str) -> list[Candle]:
    """Parse a `/public/candlestick` body (hourly); any bad row raises, naming it."""
    if not isinstance(body, dict) or body.get("status") != "0000":
        status = body.get("status") if isinstance(body, dict) else None
        message = body.get("message", "(no message)") if isinstance(body, dict) else type(body).__name__
        raise ExchangeError(f"{where}: status {status!r}: {message}")
    rows = body.get("data")
    if not isinstance(rows, list):
        raise ExchangeError(f"{where}: `data` is {type(rows).__name__}, expected a list of rows")
    # Bithumb's order is open, CLOSE, HIGH, LOW: reading it as OHLC stores the high as the close.
    return candles_from_ms_rows(rows, where=where, layout="ochlv")


def write_bithumb_to(to: datetime) -> str:
    """Bithumb reads an offset-less `to` as KST; sending KST wall time avoids a 9-hour hole."""
    return (to + KST).strftime("%Y-%m-%d %H:%M:%S")


class BithumbClient(ApiClient):
    """Bithumb's public API. `pause` spaces v1 back-fill pages."""

    default_name = "bithumb"

    def fetch(self, market: Market, since: datetime | None, now: datetime, *,
              known: datetime | None = None) -> list[Candle]:
        if market.interval not in PUBLIC_INTERVALS:
            grid = grid_of(market)
            # `to` is exclusive: starting at the open candle's start leaves that candle out.
            candles = self._page_back_v1(market, first_to=grid.floor(now), since=since, known=known)
            return closed_since(candles, since, now, grid.step)
        path = public_path(market)
        body = self.get(path, None)
        window = parse_public(body, where=f"{self.name} {path}")
        oldest = min((c.open_time for c in window), default=None)
        if since is None or (oldest is not None and oldest <= since + HOUR):
            return closed_since(window, since, now)
        # The window starts after `since`: fill the hours before it, ending where the window begins
        # (or at `now`, when a gap repair asks about hours older than the window).
        first_to = min(oldest, HOURLY.floor(now)) if oldest else HOURLY.floor(now)
        older = self._page_back_v1(market, first_to=first_to, since=since, known=known)
        return closed_since(window + older, since, now)

    def _page_back_v1(self, market: Market, *, first_to: datetime, since: datetime | None,
                      known: datetime | None) -> list[Candle]:
        return page_back_v1(self, market, first_to=first_to, since=since, known=known,
                            write_to=write_bithumb_to, to_note=" KST")
