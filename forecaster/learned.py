"""Learned models: the seam a trained band model plugs into, beside the fitted band sources.

A band source (sources.py) is *fit*: a few parameters from history, stored as JSON. A learned model
is *trained*: weights, stored as safetensors, on a device. Both end in the same place: a band per
origin, (n, H, 2) log returns, that training scores beside every other source and that the served
band may draw on. A learned model may also move the median off the naive forecast.

A learned model implements ``LearnedModel``; ``ModelConfig.learned`` names it (``none``: the band
sources alone, the default). Adding one is a class in its own module and one line in ``LEARNED``;
training, forecasting, the backtest, the gate and ``bench/quality.py --learned`` take it from there.

The median's yardstick is the naive forecast (the close at the origin): ``naive_center`` is what
is served without a learned model, and what every accuracy figure is set next to.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Callable, Protocol

import numpy as np

# name -> "module:attribute" of its LearnedModel, imported only when asked for (torch is heavy).
LEARNED: dict[str, str] = {
    "lstm": "forecaster.lstm_band:LSTM",
}
NONE = "none"


@dataclass
class LearnedFit:
    """What training a learned model leaves: weights to store, the figures of its validation slice."""

    state: dict[str, Any]  # tensors, stored as safetensors
    epochs: int
    stats: dict[str, list]  # stored with the model and handed back to ``quantiles``; ``shrink`` (H,) at least
    val_band: np.ndarray  # (n, H, 2) out-of-sample band on the validation origins, log returns
    val_center: np.ndarray  # (n, H) its median there, log returns
    extra: dict = field(default_factory=dict)


class LearnedModel(Protocol):
    name: str

    def train(self, s, train_origins: np.ndarray, val_origins: np.ndarray, fitted: dict, config, device, *,
              stop=None, progress: Callable | None = None) -> LearnedFit:
        """Train on ``train_origins`` (early stopping and calibration on ``val_origins``); ``fitted``:
        the band sources fit up to the split, which the model may start from."""

    def load(self, config, state: dict[str, Any], n_features: int, device) -> Any:
        """The trained network rebuilt from ``LearnedFit.state``, on ``device``."""

    def quantiles(self, network, stats: dict, s, origins: np.ndarray, config, fitted: dict,
                  device) -> tuple[np.ndarray, np.ndarray]:
        """At forecast time: (band (n, H, 2), median (n, H)) in log returns from the origins."""


def names() -> tuple[str, ...]:
    """The values ``ModelConfig.learned`` accepts."""
    return (NONE, *LEARNED)


def get(name: str) -> LearnedModel | None:
    """The learned model called ``name``; None for ``none``."""
    if name == NONE:
        return None
    try:
        module, _, attribute = LEARNED[name].partition(":")
    except KeyError:
        raise ValueError(f"learned must be one of {', '.join(names())}") from None
    return getattr(import_module(module), attribute)


def naive_center(n: int, horizon: int) -> np.ndarray:
    """The naive forecast's median: no move from the origin's close at any horizon."""
    return np.zeros((n, horizon))
