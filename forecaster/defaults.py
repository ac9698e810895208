"""What a model of each interval looks at by default, in steps of that interval (ModelConfig.for_interval,
the backtest, the settings). The time arithmetic of intervals is core/intervals.py's.

1h is the original model; the others keep its proportions in time where the data allows (a week of
lookback, 90 days of validation, 180 days of training, two years for the volatility model) and
forecast what a trader of that interval looks at. Say them in README.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.intervals import DEFAULT_INTERVAL, Interval, get_interval


@dataclass(frozen=True)
class ModelDefaults:
    lookback: int
    patch: int
    horizon: int
    val_steps: int
    train_steps: int
    volatility_steps: int
    retrain_every: int
    backtest_days: int


DEFAULTS: dict[str, ModelDefaults] = {
    # 5m: an hour ahead; 15m's proportions in time (30 days of validation, a year for the
    # volatility model: 52 candles per 5-minute slot of the week), 90 days of training, a refit a day.
    "5m": ModelDefaults(lookback=576, patch=24, horizon=12, val_steps=8640, train_steps=25920,
                        volatility_steps=105120, retrain_every=288, backtest_days=30),
    "15m": ModelDefaults(lookback=384, patch=16, horizon=16, val_steps=2880, train_steps=8640,
                         volatility_steps=35040, retrain_every=96, backtest_days=30),
    "1h": ModelDefaults(lookback=168, patch=4, horizon=24, val_steps=2160, train_steps=4320,
                        volatility_steps=17520, retrain_every=168, backtest_days=90),
    "4h": ModelDefaults(lookback=180, patch=6, horizon=18, val_steps=540, train_steps=1080,
                        volatility_steps=4380, retrain_every=42, backtest_days=180),
    "1d": ModelDefaults(lookback=60, patch=5, horizon=7, val_steps=180, train_steps=720,
                        volatility_steps=1460, retrain_every=7, backtest_days=360),
}


def defaults_for(interval: str | Interval = DEFAULT_INTERVAL) -> ModelDefaults:
    """The model defaults of a supported interval (ValueError naming the supported ones otherwise)."""
    return DEFAULTS[get_interval(interval).name]


def backtest_defaults(interval: str | Interval = DEFAULT_INTERVAL) -> dict:
    """The backtest's defaults for an interval, in its steps: for 1h, 90 days, an origin every hour,
    a refit every 168 hours on the last 4,320, 24 hours ahead. The one definition: the CLI, the
    backtest job and forecaster.backtest read it."""
    d = defaults_for(interval)
    return {"days": d.backtest_days, "step": 1, "retrain_every": d.retrain_every,
            "train_steps": d.train_steps, "horizon": d.horizon}
