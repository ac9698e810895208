"""The one table of exchanges: for each, its client, its public API root, the candle intervals it
serves and when its day begins.

Adding an exchange: one module with a client class, one row in `EXCHANGES`. Market parsing
(`base.KNOWN_EXCHANGES`), candle grids (`grid_of`), the settings (a FORECASTER_<NAME>_URL per row,
jobs/settings.py) and the test exchange all read this table. The client is named by its import path and imported only when a
client is made, so that `base.py` can read this table without importing every client (which import
`base.py`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import TYPE_CHECKING, Any

from core.grid import CandleGrid
from core.intervals import SUPPORTED, minutes_of
from core.market import Market

if TYPE_CHECKING:
    import requests

    from .base import ExchangeClient

KST_MIDNIGHT_UTC = timedelta(hours=15)  # 00:00 KST (UTC+9) is 15:00 UTC of the day before
UTC_MIDNIGHT = timedelta(0)

# The candle lengths each API offers, in minutes (its documentation); an exchange serves each of
# core's supported intervals its API offers, so a new interval needs no line here.
# Upbit's and Bithumb's v1: /v1/candles/minutes/{1,3,5,10,15,30,60,240} and /v1/candles/days.
V1_MINUTES = frozenset({1, 3, 5, 10, 15, 30, 60, 240, 1440})
# Binance's klines: 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d.
KLINE_MINUTES = frozenset({1, 3, 5, 15, 30, 60, 120, 240, 360, 480, 720, 1440, 4320})


def offered(minutes: frozenset[int]) -> tuple[str, ...]:
    """Core's supported intervals whose length is one of `minutes`, shortest first."""
    return tuple(name for name in SUPPORTED if minutes_of(name) in minutes)


@dataclass(frozen=True)
class Exchange:
    name: str
    client: str  # "module:ClassName"
    default_url: str
    intervals: tuple[str, ...]  # the candle intervals its client fetches natively
    # When its day candle begins, as a time of day in UTC; its 4h candles start from the same time.
    day_start: timedelta

    @property
    def url_field(self) -> str:
        """The setting that points its client at another URL (a test exchange, a proxy): one per
        exchange, made from this row (jobs/settings.py), read from FORECASTER_<NAME>_URL."""
        return f"{self.name}_url"

    @property
    def url_setting(self) -> str:
        return f"FORECASTER_{self.url_field.upper()}"


# Day starts, and where they come from (README, "Candle intervals and what a day is on each exchange"):
# - Bithumb: its day, and its 4h blocks, start at 00:00 KST. Seen in its real data: the first BTC_KRW
#   24h candle opens at 1388070000000 ms = 2013-12-26T15:00Z (tests/data/README.md); and in a client
#   library's documented v1 grid (maxt's Bithumb page: 4h at 03:00, 07:00, ... UTC, 1d at 15:00 UTC).
# - Upbit: UTC days (docs: a day candle of candle_date_time 2024-08-31T00:00:00 holds the trades from
#   then until 2024-09-01T00:00:00; prev_closing_price "전일 종가(UTC 0시 기준)").
# - Binance: UTC (docs, /api/v3/klines: timeZone "Default: 0 (UTC)"; the client sends none).
EXCHANGES: dict[str, Exchange] = {ex.name: ex for ex in (
    Exchange("bithumb", "exchanges.bithumb:BithumbClient", "https://api.bithumb.com",
             offered(V1_MINUTES), KST_MIDNIGHT_UTC),
    Exchange("upbit", "exchanges.upbit:UpbitClient", "https://api.upbit.com",
             offered(V1_MINUTES), UTC_MIDNIGHT),
    Exchange("binance", "exchanges.binance:BinanceClient", "https://api.binance.com",
             offered(KLINE_MINUTES), UTC_MIDNIGHT),
)}



def exchange(name: str) -> Exchange:
    """The row of `name`, or ValueError naming the known exchanges."""
    try:
        return EXCHANGES[name]
    except KeyError:
        raise ValueError(f"unknown exchange {name!r} (known: {', '.join(EXCHANGES)})") from None


def grid_of(market: Market) -> CandleGrid:
    """The open times of a market's candles: its interval, from its exchange's day start."""
    return market.period.grid(exchange(market.exchange).day_start)


def client_class(name: str) -> type:
    module, _, cls = exchange(name).client.partition(":")
    return getattr(import_module(module), cls)


def make_client(name: str, base_url: str | None, session: requests.Session, **options: Any) -> ExchangeClient:
    """The client for exchange `name` at `base_url` (None: the exchange's public API root).

    `options` go to the client's constructor (timeout, max_pages, pause, ...).
    """
    return client_class(name)(base_url or exchange(name).default_url, session, **options)
