"""Binance spot hourly klines: `GET /api/v3/klines`, oldest first, paged forward with `startTime`.

Rows are `[open_ms, "open", "high", "low", "close", "volume", close_ms, ...]` (12 fields).
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import requests

from .base import HOUR, Candle, ExchangeError, Market, candles_from_ms_rows, closed_since, utc_hour_floor
from .http import ApiClient

KLINES_PATH = "/api/v3/klines"
PAGE_LIMIT = 1000  # the API's maximum `limit`
# A guard against an API that ignores startTime; 1000 pages of 1000 hours is over a century.


def to_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def parse_klines(body: Any, *, where: str) -> list[Candle]:
    """Parse one klines page; any bad row raises, naming it."""
    if not isinstance(body, list):
        raise ExchangeError(f"{where}: expected a JSON list of klines, got {type(body).__name__}")
    return candles_from_ms_rows(body, where=where, layout="ohlcv")


class BinanceClient(ApiClient):
    """Binance's public market-data API. `limit` is the page size (tests make it small to page often)."""

    default_name = "binance"
    default_pause = 0.0

    def __init__(self, base_url: str, session: requests.Session, name: str | None = None, *,
                 limit: int = PAGE_LIMIT, **options) -> None:
        super().__init__(base_url, session, name, **options)
        self.limit = limit

    def fetch(self, market: Market, since: datetime | None, now: datetime, *,
              known: datetime | None = None) -> list[Candle]:
        """Pages forward, so an early stop only leaves the newest hours for the next run; `known`
        is not needed to tell a short history from a failed page."""
        symbol = f"{market.base}{market.quote}"
        # endTime just before `now` keeps out candles opening later, whether Binance compares it
        # with the open or the close time; the current open candle is dropped by closed_since.
        end_ms = to_ms(now) - 1
        if since is None:  # no startTime: Binance answers the latest `limit` klines
            return closed_since(self._page(symbol, None, end_ms), None, now)
        start = utc_hour_floor(since) + HOUR
        candles: list[Candle] = []
        for _ in range(self.max_pages):
            if start + HOUR > now:  # the next candle has not closed yet
                return closed_since(candles, since, now)
            page = self._page(symbol, start, end_ms)
            if not page:
                return closed_since(candles, since, now)
            newest = max(c.open_time for c in page)
            if newest < start:
                raise ExchangeError(f"{self.name} {KLINES_PATH} {symbol}: page from {start:%Y-%m-%dT%H:%MZ} "
                                    "did not go forward in time")
            candles.extend(page)
            start = newest + HOUR
            time.sleep(self.pause)
        raise ExchangeError(f"{self.name} {KLINES_PATH} {symbol}: {self.max_pages} pages did not reach the present")

    def _page(self, symbol: str, start: datetime | None, end_ms: int) -> list[Candle]:
        params: dict[str, Any] = {"symbol": symbol, "interval": "1h", "endTime": end_ms, "limit": self.limit}
        if start is not None:
            params["startTime"] = to_ms(start)
        body = self.get(KLINES_PATH, params, endpoint=f"{KLINES_PATH} {symbol}")
        since_txt = f"startTime={start:%Y-%m-%dT%H:%MZ}" if start else "latest"
        return parse_klines(body, where=f"{self.name} {KLINES_PATH} {symbol} ({since_txt})")
