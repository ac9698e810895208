"""Candle intervals: the one place that says how long a step is and what a model of each interval
looks at by default. Everything in the forecaster counts in steps of its market's interval.

A day is ``steps_per_day`` steps; the season of a step is its day of the week and its step of the
day (hour of day for 1h, quarter-hour for 15m, four-hour block for 4h; the day of the week alone
for 1d). Windows defined in time (a day, a week, a month, 180 days) become steps here.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Interval:
    name: str
    minutes: int
    # Model and backtest defaults, in steps of this interval (ModelConfig.for_interval, backtest).
    lookback: int
    patch: int
    horizon: int
    val_steps: int
    train_steps: int
    volatility_steps: int
    retrain_every: int
    backtest_days: int

    @property
    def step(self) -> timedelta:
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

    def slot_of_week(self, times: pd.DatetimeIndex) -> np.ndarray:
        """0 .. slots_per_week - 1: the UTC day of the week times steps per day, plus the step of
        the day (counted from 00:00 UTC, so a market whose candles start at another minute of
        the day keeps its slots consistent)."""
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


# Defaults (say them in README): 1h is the original model; the others keep its proportions in
# time where the data allows (a week of lookback, 90 days of validation, 180 days of training,
# two years for the volatility model) and forecast what a trader of that interval looks at.
INTERVALS: dict[str, Interval] = {
    "15m": Interval("15m", 15, lookback=384, patch=16, horizon=16, val_steps=2880, train_steps=8640,
                    volatility_steps=35040, retrain_every=96, backtest_days=30),
    "1h": Interval("1h", 60, lookback=168, patch=4, horizon=24, val_steps=2160, train_steps=4320,
                   volatility_steps=17520, retrain_every=168, backtest_days=90),
    "4h": Interval("4h", 240, lookback=180, patch=6, horizon=18, val_steps=540, train_steps=1080,
                   volatility_steps=4380, retrain_every=42, backtest_days=180),
    "1d": Interval("1d", 1440, lookback=60, patch=5, horizon=7, val_steps=180, train_steps=720,
                   volatility_steps=1460, retrain_every=7, backtest_days=360),
}
DEFAULT_INTERVAL = "1h"


def backtest_defaults(interval: str | Interval = DEFAULT_INTERVAL) -> dict:
    """The backtest's defaults for an interval, in its steps: for 1h, 90 days, an origin every hour,
    a refit every 168 hours on the last 4,320, 24 hours ahead. The one definition: the CLI, the
    backtest job and forecaster.backtest read it."""
    iv = get_interval(interval)
    return {"days": iv.backtest_days, "step": 1, "retrain_every": iv.retrain_every,
            "train_steps": iv.train_steps, "horizon": iv.horizon}


def get_interval(name: str | Interval) -> Interval:
    if isinstance(name, Interval):
        return name
    try:
        return INTERVALS[name]
    except KeyError:
        raise ValueError(f"interval {name!r} is not one of {', '.join(INTERVALS)}") from None
