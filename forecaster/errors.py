"""Domain errors of the forecaster, raised low and turned into one clear line at the edge."""
from __future__ import annotations


class NotEnoughHistory(ValueError):
    """The candles given are too few (or too gappy) to train or to forecast from."""


class TrainingCancelled(RuntimeError):
    """Training was asked to stop (the ``stop`` event was set); no model is returned."""
