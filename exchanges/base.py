"""What every exchange client speaks beyond the core's vocabulary: its errors, the client interface,
the market parser that knows the exchange table, and the row parsers the clients share."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from core.candle import Candle, make_candle as _make_candle
from core.grid import EPOCH, HOUR, HOURLY, CandleGrid
from core.intervals import INTERVALS
from core.market import MAX_SYMBOL_CHARS, Market, MarketError, parse_market_text, shown

from .registry import EXCHANGES

KNOWN_EXCHANGES = tuple(EXCHANGES)


class ExchangeError(Exception):
    """An exchange answered something we cannot use. The message names exchange, endpoint and problem."""


def parse_market(text: str) -> Market:
    """Parse `bithumb:ETH-KRW` or `upbit:ETH-KRW@1d` (core.market.parse_market_text: any case, no
    white space), then check it against the exchange table: a known exchange, an interval it
    serves, a symbol the database can store."""
    market = parse_market_text(text)
    if market.exchange not in KNOWN_EXCHANGES:
        raise MarketError(f"market {shown(text)}: unknown exchange {market.exchange!r} (known: {', '.join(KNOWN_EXCHANGES)})")
    interval = market.interval
    if interval not in INTERVALS:
        raise MarketError(f"market {shown(text)}: unknown interval {interval!r} (known: {', '.join(INTERVALS)})")
    served = EXCHANGES[market.exchange].intervals
    if interval not in served:
        raise MarketError(f"market {shown(text)}: {market.exchange} does not serve {interval} candles "
                          f"(it serves {', '.join(served)})")
    symbol = market.symbol
    if len(symbol) > MAX_SYMBOL_CHARS:
        raise MarketError(f"market {shown(text)}: symbol {symbol[:40]!r}{'...' if len(symbol) > 40 else ''} is "
                          f"{len(symbol)} characters long, more than the {MAX_SYMBOL_CHARS} the database stores")
    return market


def make_candle(open_time: datetime, open_, high, low, close, volume, *, where: str,
                grid: CandleGrid = HOURLY) -> Candle:
    """core.candle.make_candle, raising ExchangeError: values an exchange sent that cannot be a candle."""
    return _make_candle(open_time, open_, high, low, close, volume, where=where, grid=grid, error=ExchangeError)


class ExchangeClient(Protocol):
    """Fetch closed candles of one market in its interval (`market.interval`), on its grid.

    `fetch(market, since, now)` returns the candles with `since < open_time` that have closed at
    `now` (open_time + step <= now), oldest first, without duplicates. `since=None` means "as far
    back as one request of the latest window goes". Clients page back in time as far as `since`
    where the exchange allows it. `known` is a time the caller already stores a candle of: the
    exchange's data reaches back at least that far, so a history that ends after it is a failed
    fetch (ExchangeError), not the start of the market. A `now` in the past asks about older
    candles (a gap repair). Each candle comes from the exchange's own candles of that interval:
    nothing is resampled.
    """

    name: str

    def fetch(self, market: Market, since: datetime | None, now: datetime, *,
              known: datetime | None = None) -> list[Candle]: ...


def utc_from_ms(ms) -> datetime:
    """Epoch milliseconds (int or digit string, as exchanges send them) to an aware UTC datetime, exactly."""
    return EPOCH + timedelta(milliseconds=int(ms))


def candles_from_ms_rows(rows: list, *, where: str, layout: str, grid: CandleGrid = HOURLY) -> list[Candle]:
    """Candles from array rows `[open_ms, v1, v2, v3, v4, v5, ...]` whose five values follow
    `layout`, a word naming each column: "ohlcv" (Binance) or "ochlv" (Bithumb, close before high).
    Any bad row, or one whose open time is not on `grid`, raises, naming it."""
    index = {name: 1 + layout.index(name) for name in "ohlcv"}
    candles = []
    for i, row in enumerate(rows):
        at = f"{where} row {i}"
        if not isinstance(row, list) or len(row) < 6:
            columns = ", ".join({"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}[c] for c in layout)
            raise ExchangeError(f"{at}: expected [open_ms, {columns}, ...], got {row!r}")
        try:
            open_time = utc_from_ms(row[0])
        except (TypeError, ValueError, OverflowError):
            raise ExchangeError(f"{at}: open time {row[0]!r} is not epoch milliseconds") from None
        o, h, lo, c, v = (row[index[name]] for name in "ohlcv")
        candles.append(make_candle(open_time, o, h, lo, c, v, where=f"{at} ({open_time:%Y-%m-%dT%H:%MZ})", grid=grid))
    return candles


def closed_since(candles: list[Candle], since: datetime | None, now: datetime, step: timedelta = HOUR) -> list[Candle]:
    """The ExchangeClient result: candles of `step` closed at `now` after `since`, oldest first, one per open_time.

    When an open_time appears twice the first one given wins, so callers list their freshest source first.
    """
    if now.tzinfo is None or (since is not None and since.tzinfo is None):
        raise ValueError("`now` and `since` must be timezone-aware")
    by_time: dict[datetime, Candle] = {}
    for c in candles:
        if c.open_time + step <= now and (since is None or c.open_time > since):
            by_time.setdefault(c.open_time, c)
    return [by_time[t] for t in sorted(by_time)]
