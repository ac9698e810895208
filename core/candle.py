"""The candle record and its one validator, for the API clients and the CSV import alike."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .grid import HOURLY, CandleGrid

# Bounds that keep returns, squared errors and interval scores finite in float32 and float64: far
# beyond any real price (BTC in KRW is ~1e8, a satoshi 1e-8) or hourly volume (SHIB's is ~1e12).
MIN_PRICE, MAX_PRICE, MAX_VOLUME = 1e-12, 1e15, 1e18


class CandleError(ValueError):
    """Values that cannot be a candle. The message names the source, the problem and the values."""


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


def make_candle(open_time: datetime, open_, high, low, close, volume, *, where: str,
                grid: CandleGrid = HOURLY, error: type[Exception] = CandleError) -> Candle:
    """Build a validated candle whose open_time lies on `grid` (default: on the hour); `where` names
    the source (exchange, endpoint, row) for the error, raised as `error`."""
    try:
        values = [float(v) for v in (open_, high, low, close, volume)]
    except (TypeError, ValueError):
        raise error(f"{where}: a price or volume is not a number: {[open_, high, low, close, volume]!r}") from None
    o, h, lo, c, v = values
    problem = candle_problem(o, h, lo, c, v)
    if problem:
        raise error(f"{where}: {problem} (open={o}, high={h}, low={lo}, close={c}, volume={v})")
    if open_time.tzinfo is None or open_time.utcoffset() != timedelta(0):
        open_time = open_time.astimezone(timezone.utc) if open_time.tzinfo else open_time.replace(tzinfo=timezone.utc)
    if not grid.contains(open_time):
        raise error(f"{where}: open_time {open_time.isoformat()} is not a candle start ({grid.describe()})")
    return Candle(open_time, o, h, lo, c, v)


def candle_problems(o, h, lo, c, v) -> list[tuple[Any, str]]:
    """The candle validator, on numbers or on numpy arrays of many candles alike: each check as
    (True where the values cannot be a candle, why), in the order they are checked. The one rule
    for the API clients (candle_problem) and the CSV import."""
    import numpy as np  # arrays of many candles at once; imported when a candle is checked
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
