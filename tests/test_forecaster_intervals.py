"""The forecaster in steps of any interval: 4h and 1d candles made from the real 1h series (the
only place in the project where candles are resampled), trained, forecast and walked forward."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.intervals import INTERVALS, get_interval
from forecaster import windows
from forecaster.backtest import plan_walk_forward, walk_forward
from forecaster.config import ModelConfig
from forecaster.frames import candles_frame, step_grid
from forecaster.predict import Forecaster
from forecaster.train import train
from forecaster.volatility import fit_volatility
from tests.helpers.frames import real_candles

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def resampled(rule: str, offset: str = "0h") -> pd.DataFrame:
    """2023's real hourly Binance candles as ``rule`` candles starting at ``offset`` past midnight
    UTC (Upbit's and Bithumb's 4h and day candles start at 00:00 KST = 15:00 UTC)."""
    hourly = real_candles(8_759, end="2023-12-31T23:00Z")
    out = hourly.resample(rule, offset=offset, label="left", closed="left").agg(AGG).dropna()
    return out.iloc[1:-1]  # partial first and last candles


TINY = {"hidden_size": 8, "max_epochs": 2, "batch_size": 64, "patience": 1}


@pytest.mark.parametrize("name, rule, offset, cfg", [
    ("4h", "4h", "3h", {"lookback": 42, "patch": 6, "val_steps": 300}),
    ("1d", "24h", "15h", {"lookback": 20, "patch": 5, "val_steps": 60}),
])
def test_train_and_forecast_in_steps_of_the_interval(name, rule, offset, cfg):
    frame = resampled(rule, offset)
    config = ModelConfig.for_interval(name, **TINY, **cfg)
    result = train(frame, config, "cpu")
    fc = Forecaster.load(result.weights)
    out = fc.forecast(frame)
    step = get_interval(name).step
    assert list(out["horizon"]) == list(range(1, config.horizon + 1))
    assert (out["target_time"] == frame.index[-1] + out["horizon"] * pd.Timedelta(step)).all()
    assert (out["yhat_lower"] < out["yhat_upper"]).all()
    assert fc.fitted["volatility"].model.season.shape == (get_interval(name).slots_per_week,)
    widths = (out["yhat_upper"] - out["yhat_lower"]).to_numpy()
    assert widths[-1] > widths[0]  # further out, wider


def test_defaults_per_interval_keep_1h_as_it_was():
    one_hour = ModelConfig.for_interval("1h")
    assert one_hour == ModelConfig()  # the 1h defaults did not change
    assert (one_hour.lookback, one_hour.horizon, one_hour.val_steps) == (168, 24, 2160)
    assert ModelConfig.for_interval("1d").horizon == 7
    for iv in INTERVALS.values():
        cfg = ModelConfig.for_interval(iv.name)
        assert cfg.lookback % cfg.patch == 0 and cfg.val_steps > cfg.horizon
        assert iv.days(1) == iv.steps_per_day


def test_day_candles_have_a_day_of_week_season_and_a_weekly_plan():
    frame = resampled("24h", "15h")
    s = windows.series_from_grid(step_grid(frame, "1d"), interval="1d")
    vol = fit_volatility(s.log_close, s.log_range, s.times, 7, interval="1d")
    assert vol.season.shape == (7,) and np.isclose(np.mean(vol.season ** 2), 1.0)
    plan = plan_walk_forward(frame.index, days=60, interval="1d")
    assert len(plan.origins) == 60 and plan.origins[-1] == frame.index[-1] - 7 * pd.Timedelta(days=1)
    assert (np.diff(plan.fit_origins) == np.timedelta64(7, "D")).all()  # a refit every 7 days


def test_a_candle_off_the_interval_grid_is_refused():
    frame = resampled("4h", "3h")
    bad = pd.concat([frame.iloc[:5], frame.iloc[5:6].set_axis(frame.index[5:6] + pd.Timedelta(hours=1))])
    with pytest.raises(ValueError, match="not on the 4h grid"):
        candles_frame(bad, "4h")
    assert len(candles_frame(frame, "4h")) == len(frame)


def test_walk_forward_of_day_candles_next_to_the_yardsticks():
    frame = resampled("24h", "15h")
    config = ModelConfig.for_interval("1d", **TINY, lookback=20, patch=5, val_steps=60)
    res = walk_forward(frame, days=20, retrain_every=10, train_steps=200, config=config)
    assert res.summary.n_origins == 20 and res.summary.n_fits == 2
    assert list(res.table["horizon"]) == list(range(1, 8))
    assert res.summary.ratio["block"] == str(pd.Timedelta(days=7))  # a week of day origins
