"""When candles open: the grid of open times of one interval on one exchange.

Every supported interval (core.intervals.SUPPORTED) divides a day, so a grid is its step plus the time of day, in
UTC, at which the exchange's day begins: Binance's and Upbit's days begin at 00:00 UTC, Bithumb's at
00:00 KST (15:00 UTC), so Bithumb's 4h candles open at 03:00, 07:00, ... UTC and its day candles at
15:00 UTC. 15-minute and hourly grids are the same on every exchange (a day start on the hour).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
ZERO = timedelta(0)


@dataclass(frozen=True)
class CandleGrid:
    """Open times `EPOCH + anchor + k * step` for every integer k. `anchor` is kept modulo `step`, so
    two grids with the same open times compare equal."""

    step: timedelta
    anchor: timedelta = ZERO

    def __post_init__(self) -> None:
        if self.step <= ZERO:
            raise ValueError(f"a candle step must be positive, got {self.step}")
        object.__setattr__(self, "anchor", self.anchor % self.step)

    def floor(self, ts: datetime) -> datetime:
        """The open time of the candle that contains `ts` (aware; returned in UTC)."""
        ts = _aware_utc(ts)
        return ts - (ts - EPOCH - self.anchor) % self.step

    def contains(self, ts: datetime) -> bool:
        """Whether a candle can open at `ts`."""
        return self.floor(ts) == _aware_utc(ts)

    def last_closed(self, now: datetime) -> datetime:
        """The open time of the newest candle that has closed at `now` (open_time + step <= now)."""
        return self.floor(now) - self.step

    def describe(self) -> str:
        """`on the hour`, `every 4h from 03:00 UTC`, `every 1d from 15:00 UTC`: for error messages."""
        if self.step == HOUR:
            return "on the hour"
        first = EPOCH + self.anchor
        return f"every {_span(self.step)} from {first:%H:%M} UTC"


HOURLY = CandleGrid(HOUR)


def _aware_utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"time {ts.isoformat()} has no time zone; candle times are aware UTC")
    return ts.astimezone(timezone.utc)


def _span(step: timedelta) -> str:
    minutes = int(step / timedelta(minutes=1))
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def utc_hour_floor(ts: datetime) -> datetime:
    return HOURLY.floor(ts)


def last_closed_open_time(now: datetime, grid: CandleGrid = HOURLY) -> datetime:
    """The open_time of the newest candle on `grid` (default: hourly) that has closed at `now`;
    `last_closed_open_time(now, grid_of(market))` for a market of another interval."""
    return grid.last_closed(now)
