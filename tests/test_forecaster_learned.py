"""The learned-model seam (forecaster/learned.py): a new learned model is one class and one registry
line, and training, storage, forecasting and the walk-forward backtest take it from there. Shown
with a deliberately simple model: one scale factor per horizon on the volatility model's band and a
fixed upward tilt of the median, both stored as tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from forecaster import learned
from forecaster.backtest import walk_forward
from forecaster.config import ModelConfig
from forecaster.learned import LearnedFit
from forecaster.predict import Forecaster
from forecaster.train import train
from tests.helpers.frames import real_candles

TILT = 0.002  # the toy median: 0.2% above the close at every horizon


class WiderBand:
    """Widens the volatility model's band by a per-horizon factor chosen on the training origins."""

    name = "wider"

    def train(self, s, train_origins, val_origins, fitted, config, device, *, stop=None, progress=None):
        factor = torch.full((config.horizon,), 1.25)
        band, center = self.quantiles(factor, {}, s, val_origins, config, fitted, device)
        return LearnedFit({"factor": factor}, epochs=1, stats={"shrink": [1.0] * config.horizon},
                          val_band=band, val_center=center)

    def load(self, config, state, n_features, device):
        return state["factor"]

    def quantiles(self, network, stats, s, origins, config, fitted, device):
        band = fitted["volatility"].band(s, origins) * network.numpy()[None, :, None]
        return band, np.full((len(origins), config.horizon), TILT)


WIDER = WiderBand()


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(learned.LEARNED, "wider", f"{__name__}:WIDER")
    return ModelConfig(lookback=24, horizon=6, val_steps=48, seed=3, learned="wider")


@pytest.fixture(scope="module")
def frame():
    return real_candles(1_100)


def test_an_unknown_learned_model_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="learned must be one of none, lstm"):
        ModelConfig(learned="prophet")


def test_a_registered_learned_model_is_trained_scored_stored_and_served(registered, frame):
    result = train(frame, registered, "cpu")
    # scored out of sample beside every band source, and its weights stored with the model
    assert set(result.metrics.val_interval_score_by_source) >= {"wider", "volatility", "garch", "empirical"}
    assert result.metrics.epochs == 1
    fc = Forecaster.load(result.weights)
    assert fc.learner is WIDER and torch.equal(fc.network, torch.full((6,), 1.25))
    out = fc.forecast(frame)
    close = frame["close"].iloc[-1]
    # its median moves the forecast off the naive one, inside the band served
    assert np.allclose(out["yhat"], close * np.exp(np.clip(TILT, np.log(out["yhat_lower"] / close),
                                                           np.log(out["yhat_upper"] / close))))
    assert (out["yhat_lower"] < out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()


def test_the_walk_forward_backtest_runs_a_registered_learned_model(registered, frame):
    result = walk_forward(frame, days=2, retrain_every=24, train_steps=600, config=registered)
    assert result.summary.n_fits == 2 and result.summary.n_origins == 48
    assert all(f["metrics"].epochs == 1 for f in result.fits)
    # the tilted median is scored next to naive like any other
    assert result.summary.figures["rmae"] != 1.0
