"""Candle intervals as time arithmetic: a name ("5m", "15m", "1h", "4h", "1d") is a length in minutes, and
everything else (steps per day, the season of a step, a grid of open times, the words a message
counts steps in) follows from that length. Adding an interval is one name in `SUPPORTED` (and its
model defaults in forecaster/defaults.py).

A day is ``steps_per_day`` steps; the season of a step is its day of the week and its step of the
day (hour of day for 1h, quarter-hour for 15m, four-hour block for 4h; the day of the week alone
for 1d). Windows defined in time (a day, a week, a month, 180 days) become steps here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from .grid import ZERO, CandleGrid

SUPPORTED = ("5m", "15m", "1h", "4h", "1d")  # the intervals a market may have, shortest first
DEFAULT_INTERVAL = "1h"  # a market written without `@interval`
MINUTES_PER_UNIT = {"m": 1, "h": 60, "d": 1440}
_SPELLING = re.compile(r"^(?P<n>[1-9][0-9]*)(?P<unit>[mhd])$")


def minutes_of(name: str) -> int:
    """The length of any `Nm`/`Nh`/`Nd` spelling in minutes: 15m -> 15, 4h -> 240, 1d -> 1440."""
    m = _SPELLING.match(name)
    if not m:
        raise ValueError(f"interval {name!r} is not of the form Nm, Nh or Nd")
    return int(m["n"]) * MINUTES_PER_UNIT[m["unit"]]


@dataclass(frozen=True)
class Interval:
    """One candle interval: its name and its length; the rest is arithmetic."""

    name: str
    minutes: int

    @property
    def step(self) -> timedelta:
        """The length of one candle."""
        return timedelta(minutes=self.minutes)

    @property
    def steps_per_day(self) -> int:
        return 24 * 60 // self.minutes

    @property
    def slots_per_week(self) -> int:
        return 7 * self.steps_per_day

    def days(self, n: float) -> int:
        """Steps in ``n`` days (at least 1)."""
        return max(1, int(round(n * self.steps_per_day)))

    def slot_of_week(self, times):
        """0 .. slots_per_week - 1 for a pandas DatetimeIndex: the UTC day of the week times steps
        per day, plus the step of the day (counted from 00:00 UTC, so a market whose candles start
        at another minute of the day keeps its slots consistent)."""
        minute_of_day = times.hour.to_numpy() * 60 + times.minute.to_numpy()
        return times.day_of_week.to_numpy() * self.steps_per_day + minute_of_day // self.minutes

    def closed_after(self, newest, now) -> float:
        """How many candles have closed after the one that opened at ``newest`` (its own close
        included is 0): the lag of a store whose newest candle is ``newest``, in steps. Anchored on
        ``newest``, so it holds whatever minute of the day the exchange starts its candles at."""
        return max(0, (now - newest) // self.step - 1)

    def bootstrap_block(self, horizon: int) -> int:
        """Origins resampled together when origins overlap: a day of them, or a horizon if longer
        (a week for daily candles forecast 7 days ahead)."""
        return max(self.steps_per_day, horizon)

    def grid(self, day_start: timedelta = ZERO) -> CandleGrid:
        """The open times of this interval on an exchange whose day begins at `day_start` (UTC)."""
        return CandleGrid(self.step, day_start)

    @property
    def shows_minutes(self) -> bool:
        """Whether a candle of this interval can open off the hour, so its times need minutes."""
        return self.minutes % 60 != 0


INTERVALS: dict[str, Interval] = {name: Interval(name, minutes_of(name)) for name in SUPPORTED}


def get_interval(name: str | Interval) -> Interval:
    if isinstance(name, Interval):
        return name
    try:
        return INTERVALS[name]
    except KeyError:
        raise ValueError(f"interval {name!r} is not one of {', '.join(INTERVALS)}") from None


def steps_word(interval: str | Interval) -> str:
    """What messages count steps of `interval` in: `hours` for 1h, `4h candles` otherwise."""
    name = get_interval(interval).name
    return "hours" if name == "1h" else f"{name} candles"


# Intervals one candle of which is one whole unit of time, named by that unit.
_UNITS = {"1m": "minute", "1h": "hour", "1d": "day"}


def describe_steps(n: float, interval: str | Interval) -> str:
    """`n` steps of `interval` in words, as every message, report and page says a length: `7 days`
    (1d), `24 hours` (1h), `1 hour`, `16 steps of 15m`."""
    name = get_interval(interval).name if isinstance(interval, Interval) else interval
    count = f"{n:g}" if isinstance(n, float) else str(n)
    unit = _UNITS.get(name)
    if unit is None:
        return f"{count} step{'' if n == 1 else 's'} of {name}"
    return f"{count} {unit}{'' if n == 1 else 's'}"


def describe_steps_short(n: int, interval: str | Interval) -> str:
    """`5h`, `16 x 15m`: `n` steps, where a list leaves little room."""
    name = get_interval(interval).name
    return f"{n}h" if name == "1h" else f"{n} x {name}"


def time_format(interval: str | Interval) -> str:
    """The strftime format of a candle time of `interval`: minutes shown when a candle can open off
    the hour (`2023-12-03T15:45`), the hour otherwise (`2023-12-03T15`)."""
    return "%Y-%m-%dT%H:%M" if get_interval(interval).shows_minutes else "%Y-%m-%dT%H"
