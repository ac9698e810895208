"""Upbit candles of every interval from its v1 API (`/v1/candles/minutes/15|60|240`, `/v1/candles/days`),
newest first, paged backwards with `to` (see v1_candles.py, shared with Bithumb).

Upbit's days are UTC days: a day candle opens at 00:00 UTC (09:00 KST), and its 4h candles at
00:00, 04:00, ... UTC.
"""
from __future__ import annotations

from datetime import datetime

from .base import Candle, Market, closed_since
from .http import ApiClient
from .registry import grid_of
from .v1_candles import page_back_v1


def write_upbit_to(to: datetime) -> str:
    """Upbit reads an explicit offset, so `to` goes as UTC with "Z"."""
    return to.strftime("%Y-%m-%dT%H:%M:%SZ")


class UpbitClient(ApiClient):
    """Upbit's public quotation API. `pause` spaces back-fill pages under Upbit's per-second limit."""

    default_name = "upbit"

    def fetch(self, market: Market, since: datetime | None, now: datetime, *,
              known: datetime | None = None) -> list[Candle]:
        # `to` is exclusive: starting it at the open candle's start leaves that candle out, so every
        # row fetched is usable.
        grid = grid_of(market)
        candles = page_back_v1(self, market, first_to=grid.floor(now), since=since, known=known,
                               write_to=write_upbit_to)
        return closed_since(candles, since, now, grid.step)
