"""Binance spot klines of every interval: `GET /api/v3/klines?interval=15m|1h|4h|1d`, oldest first,
paged forward with `startTime`.

Rows are `[open_ms, "open", "high", "low", "close", "volume", close_ms, ...]` (12 fields). Kline
intervals are read in UTC unless a `timeZone` is sent, and none is: day klines open at 00:00 UTC,
4h klines at 00:00, 04:00, ... UTC.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import requests

from core.grid import HOURLY, CandleGrid

from .base import Candle, ExchangeError, Market, candles_from_ms_rows, closed_since
from .http import ApiClient
from .registry import KLINE_MINUTES, grid_of, offered

KLINES_PATH = "/api/v3/klines"
PAGE_LIMIT = 1000  # the API's maximum `limit`
# Our interval -> Binance's `interval` value: Binance spells intervals as we do.
KLINE_INTERVALS = {name: name for name in offered(KLINE_MINUTES)}


def to_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def parse_klines(body: Any, *, where: str, grid: CandleGrid = HOURLY) -> list[Candle]:
    """Parse one klines page; any bad row, or one whose open time is not on `grid`, raises, naming it."""
    if not isinstance(body, list):
        raise ExchangeError(f"{where}: expected a JSON list of klines, got {type(body).__name__}")
    return candles_from_ms_rows(body, where=where, layout="ohlcv", grid=grid)


class BinanceClient(ApiClient):
    """Binance's public market-data API. `limit` is the page size (tests make it small to page often)."""

    default_name = "binance"
    default_pause = 0.0
    # Klines page forward from `startTime`, and a start before the listing is answered from the
    # first candle on: where its data begins is what the exchange says (jobs/gaps.py, the head).
    reports_first_candle = True

    def __init__(self, base_url: str, session: requests.Session, name: str | None = None, *,
                 limit: int = PAGE_LIMIT, **options) -> None:
        super().__init__(base_url, session, name, **options)
        self.limit = limit

    def fetch(self, market: Market, since: datetime | None, now: datetime, *,
              known: datetime | None = None) -> list[Candle]:
        """Pages forward, so an early stop only leaves the newest candles for the next run; `known`
        is not needed to tell a short history from a failed page."""
        if market.interval not in KLINE_INTERVALS:
            raise ExchangeError(f"{self.name}: no klines of interval {market.interval!r} "
                                f"(it serves {', '.join(KLINE_INTERVALS)})")
        symbol = f"{market.base}{market.quote}"
        grid = grid_of(market)
        # endTime just before `now` keeps out candles opening later, whether Binance compares it
        # with the open or the close time; the current open candle is dropped by closed_since.
        end_ms = to_ms(now) - 1
        if since is None:  # no startTime: Binance answers the latest `limit` klines
            return closed_since(self._page(market, symbol, None, end_ms), None, now, grid.step)
        start = grid.floor(since) + grid.step
        candles: list[Candle] = []
        for _ in range(self.max_pages):
            if start + grid.step > now:  # the next candle has not closed yet
                return closed_since(candles, since, now, grid.step)
            page = self._page(market, symbol, start, end_ms)
            if not page:
                return closed_since(candles, since, now, grid.step)
            newest = max(c.open_time for c in page)
            if newest < start:
                raise ExchangeError(f"{self.name} {KLINES_PATH} {symbol}: page from {start:%Y-%m-%dT%H:%MZ} "
                                    "did not go forward in time")
            candles.extend(page)
            start = newest + grid.step
            time.sleep(self.pause)
        raise ExchangeError(f"{self.name} {KLINES_PATH} {symbol}: {self.max_pages} pages did not reach the present")

    def _page(self, market: Market, symbol: str, start: datetime | None, end_ms: int) -> list[Candle]:
        params: dict[str, Any] = {"symbol": symbol, "interval": KLINE_INTERVALS[market.interval],
                                  "endTime": end_ms, "limit": self.limit}
        if start is not None:
            params["startTime"] = to_ms(start)
        body = self.get(KLINES_PATH, params, endpoint=f"{KLINES_PATH} {symbol}")
        since_txt = f"startTime={start:%Y-%m-%dT%H:%MZ}" if start else "latest"
        return parse_klines(body, where=f"{self.name} {KLINES_PATH} {symbol} ({since_txt})", grid=grid_of(market))
