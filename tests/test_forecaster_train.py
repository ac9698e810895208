"""Training and forecasting: repeatable, round-trips through bytes, honest about history,
cancellable; devices resolve clearly."""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import torch

from forecaster import serialize
from forecaster.config import ModelConfig
from forecaster.device import resolve_device
from forecaster.errors import NotEnoughHistory, TrainingCancelled
from forecaster.predict import Forecaster, evaluate
from forecaster.serialize import read_metadata
from forecaster.train import train
from tests.helpers.frames import real_candles

TINY = ModelConfig(lookback=24, horizon=6, patch=4, hidden_size=8, max_epochs=2, batch_size=64,
                   val_steps=48, patience=2, seed=3)
TINY_LSTM = ModelConfig.from_dict({**TINY.to_dict(), "learned": "lstm"})


@pytest.fixture(scope="module")
def frame():
    # the volatility model needs a month of features before its first sample (forecaster/volatility.py)
    return real_candles(1_100)


@pytest.fixture(scope="module")
def trained(frame):
    return train(frame, TINY, "cpu")


@pytest.fixture(scope="module")
def trained_lstm(frame):
    return train(frame, TINY_LSTM, "cpu")


@pytest.mark.parametrize("learned", ["none", "lstm"])
def test_train_reports_what_the_model_run_needs(trained, trained_lstm, frame, learned):
    result, cfg = (trained, TINY) if learned == "none" else (trained_lstm, TINY_LSTM)
    m = result.metrics
    for key in ("val_mae", "val_naive_mae", "val_rmae", "val_coverage", "n_train", "n_val",
                "epochs", "train_seconds", "device", "shrink", "band_source", "sources",
                "val_interval_score", "val_free_interval_score"):
        assert getattr(m, key) is not None
    assert m.device == "cpu"
    assert len(m.shrink) == cfg.horizon and all(0 <= s <= 1 for s in m.shrink)
    if learned == "none":  # no network trained: nothing to stop early, a naive median
        assert m.epochs == 0 and m.shrink == [0.0] * cfg.horizon and m.val_rmae == 1.0
        assert serialize.load(result.weights)[0] == {}
    else:
        assert 1 <= m.epochs <= cfg.max_epochs
    assert result.train_start == frame.index[0] and result.train_end == frame.index[-1]
    assert result.train_end.tzinfo is not None
    meta = read_metadata(result.weights)
    assert ModelConfig.from_dict(meta["config"]) == cfg == result.config


def test_same_seed_same_weights(trained_lstm, frame):
    def tensors(result):
        return serialize.load(result.weights)[0]

    first, again = tensors(trained_lstm), tensors(train(frame, TINY_LSTM, "cpu"))
    assert first.keys() == again.keys() and first
    assert all(torch.equal(first[k], again[k]) for k in first)
    other = tensors(train(frame, ModelConfig.from_dict({**TINY_LSTM.to_dict(), "seed": 4}), "cpu"))
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_a_gpu_or_lstm_model_forecasts_like_any_other(trained_lstm, frame):
    out = Forecaster.load(trained_lstm.weights).forecast(frame)
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()


def test_load_and_forecast_round_trip(trained, frame):
    a = Forecaster.load(trained.weights).forecast(frame)
    b = Forecaster.load(bytes(trained.weights), device="cpu").forecast(frame)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["horizon", "target_time", "yhat", "yhat_lower", "yhat_upper"]
    assert list(a["horizon"]) == list(range(1, TINY.horizon + 1))
    assert a["target_time"].iloc[0] == frame.index[-1] + pd.Timedelta(hours=1)
    assert (a["yhat_lower"] <= a["yhat"]).all() and (a["yhat"] <= a["yhat_upper"]).all()
    assert np.all(np.abs(a["yhat"] / frame["close"].iloc[-1] - 1) < 0.2)


def test_forecast_uses_only_rows_up_to_origin(trained, frame):
    fc = Forecaster.load(trained.weights)
    origin = frame.index[300]
    cut = fc.forecast(frame.loc[:origin])
    with_future = fc.forecast(frame, origin=origin.to_pydatetime())
    pd.testing.assert_frame_equal(cut, with_future)
    with pytest.raises(ValueError):
        fc.forecast(frame, origin=origin + pd.Timedelta(minutes=30))


def test_short_gap_is_filled_long_gap_raises(trained, frame):
    fc = Forecaster.load(trained.weights)
    short = frame.drop(index=frame.index[-3:-1])  # 2 of 24 lookback hours missing
    out = fc.forecast(short)
    assert np.isfinite(out[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()
    long = frame.drop(index=frame.index[-12:-1])
    with pytest.raises(NotEnoughHistory):
        fc.forecast(long)
    with pytest.raises(NotEnoughHistory):
        fc.forecast(frame.iloc[:10])


def test_training_skips_windows_touching_a_gap(frame):
    gappy = frame.drop(index=frame.index[100:103])
    res = train(gappy, TINY, "cpu")
    full = train(frame, TINY, "cpu")
    assert res.metrics.n_train < full.metrics.n_train


def test_not_enough_history(frame):
    with pytest.raises(NotEnoughHistory, match="need at least"):
        train(frame.iloc[:100], TINY, "cpu")


def test_stop_cancels_and_progress_is_reported(frame):
    stop = threading.Event()
    seen = []

    def progress(epoch, n_epochs, train_loss, val_loss):
        seen.append((epoch, n_epochs))
        stop.set()

    with pytest.raises(TrainingCancelled):
        train(frame, TINY_LSTM, "cpu", stop=stop, progress=progress)
    assert seen == [(1, TINY_LSTM.max_epochs)]


def test_evaluate_compares_with_naive(trained, frame):
    res = evaluate(trained.weights, frame, frame.index[-60:-10:5])
    assert res["n"] == 10 * TINY.horizon
    assert res["naive_mae"] > 0 and np.isclose(res["rmae"], res["mae"] / res["naive_mae"])
    assert 0 <= res["coverage"] <= 1


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="FORECASTER_DEVICE"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="FORECASTER_DEVICE"):
            resolve_device("cuda:0")


def test_volatility_model_comes_from_the_training_span_only(trained, frame):
    from forecaster import windows
    from forecaster.frames import step_grid
    from forecaster.volatility import VolatilityModel, fit_volatility

    stored = VolatilityModel.from_dict(read_metadata(trained.weights)["stats"]["bands"]["volatility"])
    s = windows.series_from_grid(step_grid(frame))
    expected = fit_volatility(s.log_close, s.log_range, s.times, TINY.horizon)
    np.testing.assert_allclose(stored.season, expected.season)
    np.testing.assert_allclose(stored.beta, expected.beta)
    assert stored.season.shape == (168,) and np.isclose(np.mean(stored.season ** 2), 1.0)
    weekday, weekend = stored.season[:120].mean(), stored.season[120:].mean()
    assert weekend < weekday  # real candles: crypto moves less on Saturdays and Sundays


@pytest.mark.parametrize("learned", ["none", "lstm"])
def test_every_band_is_scored_and_one_is_served_per_horizon(trained, trained_lstm, learned):
    m = (trained if learned == "none" else trained_lstm).metrics
    by_source = m.val_interval_score_by_source
    bands = {"volatility", "empirical", "ewma", "fhs", "garch"} | ({"lstm"} if learned == "lstm" else set())
    assert bands <= set(by_source)
    assert len(m.sources) == TINY.horizon
    for h, spec in enumerate(m.sources):
        # the mean of the volatility model and GARCH, or one band that scored lower than that mean
        assert spec == "volatility+garch" or (spec in bands and by_source[spec][h] < by_source["volatility+garch"][h])
    assert m.band_beaten_at == []
    served = np.mean([by_source[spec][h] for h, spec in enumerate(m.sources)])
    assert m.val_interval_score == pytest.approx(served)


def test_a_model_of_an_older_release_says_so(trained):
    from forecaster.errors import OutdatedModel
    state, meta = serialize.load(trained.weights)
    from safetensors.torch import save
    import json
    old = save(state, metadata={"format": "forecaster-quantile-lstm/1",
                                **{k: json.dumps(v) for k, v in meta.items()}})
    with pytest.raises(OutdatedModel, match="older release"):
        Forecaster.load(old)


def test_a_naive_median_is_the_close_exactly(trained, frame):
    out = Forecaster.load(trained.weights).forecast(frame)
    assert read_metadata(trained.weights)["metrics"]["shrink"] == [0.0] * TINY.horizon
    assert (out["yhat"] == frame["close"].iloc[-1]).all()
