"""The vocabulary every exchange client speaks: markets, candles, errors, and the client interface."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from forecaster.intervals import DEFAULT_INTERVAL, INTERVALS, Interval, get_interval

from .grid import EPOCH, HOUR, HOURLY, CandleGrid
from .registry import EXCHANGES

KNOWN_EXCHANGES = tuple(EXCHANGES)
# Bounds that keep returns, squared errors and interval scores finite in float32 and float64: far
# beyond any real price (BTC in KRW is ~1e8, a satoshi 1e-8) or hourly volume (SHIB's is ~1e12).
MIN_PRICE, MAX_PRICE, MAX_VOLUME = 1e-12, 1e15, 1e18
MAX_SYMBOL_CHARS = 32  # the symbol columns are String(32) (db/models.py): Postgres refuses longer ones
_MARKET_RE = re.compile(r"^(?P<exchange>[a-z]+):(?P<base>[A-Z0-9]+)-(?P<quote>[A-Z0-9]+)(@(?P<interval>\w+))?$")


class ExchangeError(Exception):
    """An exchange answered something we cannot use. The message names exchange, endpoint and problem."""


class MarketError(ValueError):
    """A market string is not of the form `exchange:BASE-QUOTE[@interval]`."""


@dataclass(frozen=True)
class Market:
    """The market key of every layer: exchange, symbol and candle interval (CONTRACT.md)."""

    exchange: str
    base: str
    quote: str
    interval: str = DEFAULT_INTERVAL

    @property
    def symbol(self) -> str:
        return f"{self.base}-{self.quote}"

    @property
    def step(self) -> Interval:
        return get_interval(self.interval)

    @property
    def grid(self) -> CandleGrid:
        """The open times of this market's candles: its interval, from its exchange's day start."""
        return CandleGrid(self.step.step, EXCHANGES[self.exchange].day_start)

    def __str__(self) -> str:
        """`bithumb:ETH-KRW` for hourly candles (as before intervals existed), `upbit:ETH-KRW@1d` otherwise."""
        suffix = "" if self.interval == DEFAULT_INTERVAL else f"@{self.interval}"
        return f"{self.exchange}:{self.symbol}{suffix}"


def parse_market(text: str) -> Market:
    """Parse `bithumb:ETH-KRW` or `upbit:ETH-KRW@1d`, in any case (`Binance:eth-usdt@4H` is
    `binance:ETH-USDT@4h`): exchange lower case, symbol upper case with a dash, interval one of
    15m, 1h, 4h, 1d (default 1h). White space is refused, not stripped: `upbit:ETH-KRW\\n` is a
    script's mistake (a line read with its newline), better named than guessed at (lists such as
    FORECASTER_MARKETS strip the spaces around their items)."""
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise MarketError(f"market {_shown(text)} has white space or a control character in it")
    exchange, colon, rest = text.partition(":")
    symbol, at, interval = rest.partition("@")
    m = _MARKET_RE.match(f"{exchange.lower()}{colon}{symbol.upper()}{at}{interval.lower()}")
    if not m:
        raise MarketError(f"market {_shown(text)} is not of the form exchange:BASE-QUOTE[@interval] "
                          "(e.g. bithumb:ETH-KRW, upbit:BTC-KRW@1d)")
    if m["exchange"] not in KNOWN_EXCHANGES:
        raise MarketError(f"market {_shown(text)}: unknown exchange {m['exchange']!r} (known: {', '.join(KNOWN_EXCHANGES)})")
    interval = m["interval"] or DEFAULT_INTERVAL
    if interval not in INTERVALS:
        raise MarketError(f"market {_shown(text)}: unknown interval {interval!r} (known: {', '.join(INTERVALS)})")
    served = EXCHANGES[m["exchange"]].intervals
    if interval not in served:
        raise MarketError(f"market {_shown(text)}: {m['exchange']} does not serve {interval} candles "
                          f"(it serves {', '.join(served)})")
    symbol = f"{m['base']}-{m['quote']}"
    if len(symbol) > MAX_SYMBOL_CHARS:
        raise MarketError(f"market {_shown(text)}: symbol {symbol[:40]!r}{'...' if len(symbol) > 40 else ''} is "
                          f"{len(symbol)} characters long, more than the {MAX_SYMBOL_CHARS} the database stores")
    return Market(m["exchange"], m["base"], m["quote"], interval)


def _shown(text: str) -> str:
    """The market as given, for an error line; a long one shortened (it may be pasted garbage)."""
    return repr(text) if len(text) <= 60 else f"{text[:60]!r}... ({len(text)} characters)"


@dataclass(frozen=True)
class Candle:
    """One candle of a market's interval. `open_time` is its aware UTC start, as the exchange gives it
    (on the market's grid: Bithumb's day candles start at 15:00 UTC)."""

    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


def utc_hour_floor(ts: datetime) -> datetime:
    return HOURLY.floor(ts)


def last_closed_open_time(now: datetime, grid: CandleGrid = HOURLY) -> datetime:
    """The open_time of the newest candle on `grid` (default: hourly) that has closed at `now`;
    `last_closed_open_time(now, market.grid)` for a market of another interval."""
    return grid.last_closed(now)


def make_candle(open_time: datetime, open_, high, low, close, volume, *, where: str,
                grid: CandleGrid = HOURLY) -> Candle:
    """Build a validated candle whose open_time lies on `grid` (default: on the hour); `where` names
    the source (exchange, endpoint, row) for the error."""
    try:
        values = [float(v) for v in (open_, high, low, close, volume)]
    except (TypeError, ValueError):
        raise ExchangeError(f"{where}: a price or volume is not a number: {[open_, high, low, close, volume]!r}") from None
    o, h, lo, c, v = values
    problem = candle_problem(o, h, lo, c, v)
    if problem:
        raise ExchangeError(f"{where}: {problem} (open={o}, high={h}, low={lo}, close={c}, volume={v})")
    if open_time.tzinfo is None or open_time.utcoffset() != timedelta(0):
        open_time = open_time.astimezone(timezone.utc) if open_time.tzinfo else open_time.replace(tzinfo=timezone.utc)
    if not grid.contains(open_time):
        raise ExchangeError(f"{where}: open_time {open_time.isoformat()} is not a candle start "
                            f"({grid.describe()})")
    return Candle(open_time, o, h, lo, c, v)


def candle_problems(o, h, lo, c, v) -> list[tuple[Any, str]]:
    """The candle validator, on numbers or on numpy arrays of many candles alike: each check as
    (True where the values cannot be a candle, why), in the order they are checked. The one rule
    for the API clients (candle_problem) and the CSV import."""
    import numpy as np
    o, h, lo, c, v = (np.asarray(x, dtype=float) for x in (o, h, lo, c, v))
    finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)
    prices = np.stack([o, h, lo, c])
    with np.errstate(invalid="ignore"):  # NaN compares False; the finite check names it first
        out_of_range = ((prices > MAX_PRICE) | ((prices > 0) & (prices < MIN_PRICE))).any(axis=0) | (v > MAX_VOLUME)
    return [
        (~finite, "a value is not finite"),
        ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), "a price is not positive"),
        (v < 0, "volume is negative"),
        (out_of_range, f"a value is out of range (prices {MIN_PRICE:g}..{MAX_PRICE:g}, volume up to {MAX_VOLUME:g}): "
                       "returns and scores computed from it would overflow"),
        (~((lo <= o) & (o <= h) & (lo <= c) & (c <= h)), "prices break low <= open, close <= high"),
    ]


def candle_problem(o: float, h: float, lo: float, c: float, v: float) -> str | None:
    """Why these values cannot be a candle, or None (candle_problems, for one candle)."""
    for bad, problem in candle_problems(o, h, lo, c, v):
        if bool(bad):
            return problem
    return None


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
