"""Walk-forward: the contract's schedule, no leakage from the future, honest metrics."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster import metrics
from forecaster.backtest import plan_walk_forward, walk_forward
from forecaster.config import ModelConfig
from tests.helpers.frames import real_candles

HOUR = pd.Timedelta(hours=1)
TINY = ModelConfig(lookback=24, horizon=4, patch=4, hidden_size=8, max_epochs=2, batch_size=64,
                   val_steps=48, patience=2, seed=1)


def test_default_plan_gives_an_origin_every_hour_2160_origins_and_13_fits():
    frame = real_candles(4320 + 24 * 100, end="2023-12-31T23:00Z")  # longer than 2023 before June
    plan = plan_walk_forward(frame.index)
    last = frame.index[-1]
    assert len(plan.origins) == 2160 and len(plan.fit_origins) == 13
    assert plan.origins[-1] == last - 24 * HOUR  # k = 0: L - H
    assert plan.origins[0] == last - 24 * HOUR - 2159 * HOUR
    assert (np.diff(plan.origins) == np.timedelta64(1, "h")).all()
    assert (np.diff(plan.fit_origins) == np.timedelta64(168, "h")).all()
    assert list(np.bincount(plan.fit_index)) == [168] * 12 + [144]


def test_daily_plan_gives_90_origins_ending_a_horizon_before_the_newest_candle():
    frame = real_candles(4320 + 24 * 100, end="2023-12-31T23:00Z")
    plan = plan_walk_forward(frame.index, step=24)
    last = frame.index[-1]
    assert len(plan.origins) == 90 and len(plan.fit_origins) == 13
    assert plan.origins[-1] == last - 24 * HOUR and plan.origins[0] == last - 24 * HOUR - 89 * 24 * HOUR
    assert list(np.bincount(plan.fit_index)) == [7] * 12 + [6]


def test_plan_skips_origins_without_a_candle():
    frame = real_candles(3000)
    plan = plan_walk_forward(frame.index, step=24)
    holed = frame.drop(index=plan.origins[[0, 5]])
    plan2 = plan_walk_forward(holed.index, step=24)
    assert len(plan2.origins) == 88 and plan2.origins[0] == plan.origins[1]


def _run(frame):
    return walk_forward(frame, days=4, step=12, retrain_every=36, train_steps=300, horizon=4,
                        config=TINY).predictions


def test_changing_candles_after_t_changes_no_earlier_forecast():
    frame = real_candles(1_200)
    before = _run(frame)
    t = pd.Timestamp(before["origin_time"].unique()[4])
    changed = frame.copy()
    changed.loc[changed.index > t, ["open", "high", "low", "close"]] *= 1.5
    changed.loc[changed.index > t, "volume"] *= 7
    after = _run(changed)
    early = before["origin_time"] <= t
    assert early.sum() >= 5 * TINY.horizon and before["fit_index"].nunique() >= 3
    pd.testing.assert_frame_equal(before[early], after[after["origin_time"] <= t])
    assert not np.allclose(before.loc[~early, "yhat"], after.loc[after["origin_time"] > t, "yhat"])


def test_backtest_result_has_table_yardsticks_and_a_bootstrap_interval():
    frame = real_candles(1_200)
    res = walk_forward(frame, days=3, step=24, retrain_every=48, train_steps=300, horizon=4,
                       config=TINY)
    assert res.summary.n_fits == len(res.fits) == 2
    assert list(res.table["horizon"]) == [1, 2, 3, 4]
    for col in ("n", "mae", "naive_mae", "rmae", "coverage", "interval_score", "best_free_interval_score",
                *(f"{y}_{m}" for y in ("empirical", "ewma", "fhs") for m in ("interval_score", "coverage"))):
        assert col in res.table
    ratio = res.summary.ratio
    assert ratio["blocks"] == 3 and ratio["low"] <= ratio["ratio"] <= ratio["high"]
    assert set(res.predictions.columns) >= {"origin_time", "target_time", "horizon", "yhat",
                                             "yhat_lower", "yhat_upper", "fit_index"}


def test_interval_score():
    assert metrics.interval_score([1], [3], [2]) == 2
    assert metrics.interval_score([1], [3], [4]) == pytest.approx(2 + 10 * 1)
    assert metrics.interval_score([1], [3], [0.5]) == pytest.approx(2 + 10 * 0.5)


def test_every_yardstick_has_its_columns_in_the_backtest_tables():
    # A yardstick added to forecaster/sources.py must be stored like the others (db/backtest_runs.py)
    from db.backtest_runs import YARDSTICKS as STORED
    from db.models import BacktestHorizon, BacktestRun
    from forecaster.sources import YARDSTICKS

    assert STORED == YARDSTICKS
    for table in (BacktestRun, BacktestHorizon):
        for name in YARDSTICKS:
            assert {f"{name}_interval_score", f"{name}_coverage"} <= set(table.__table__.columns.keys())
