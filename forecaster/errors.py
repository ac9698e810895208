"""Domain errors of the forecaster, raised low and turned into one clear line at the edge."""
from __future__ import annotations


class NotEnoughHistory(ValueError):
    """The candles given are too few (or too gappy) to train or to forecast from."""


class TrainingCancelled(RuntimeError):
    """Training was asked to stop (the ``stop`` event was set); no model is returned."""


class OutdatedModel(ValueError):
    """Stored weights of an older release's model, which this release cannot forecast with: the
    market needs a new training (the daemon does it at once)."""
