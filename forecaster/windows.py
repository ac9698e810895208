"""Windows: the lookback inputs and the horizon targets of each origin, on the hourly grid.

An origin ``t`` (an index into the grid) sees grid rows ``t - lookback .. t`` (``lookback``
returns need ``lookback + 1`` closes) and never a row after ``t``; its targets are the closes at
``t + 1 .. t + horizon``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import scaling

N_FEATURES = 6


@dataclass
class Series:
    """Per-hour arrays of one hourly grid (NaN where an hour is missing)."""

    times: pd.DatetimeIndex
    log_close: np.ndarray  # (N,)
    returns: np.ndarray  # (N,) log c[i] - log c[i-1]; NaN at 0 and next to a gap
    log_range: np.ndarray  # (N,) log(high / low)
    log_volume: np.ndarray  # (N,) log1p(volume)
    observed: np.ndarray  # (N,) bool: a candle exists at this hour


def series_from_grid(grid: pd.DataFrame, fill: bool = False) -> Series:
    """Arrays of a grid. ``fill`` forward-fills missing hours (a flat, zero-range candle with
    the previous log-volume): used at forecast time only, never for training samples."""
    observed = grid["close"].notna().to_numpy()
    close = grid["close"]
    log_range = np.log(grid["high"] / grid["low"])
    log_volume = np.log1p(grid["volume"])
    if fill:
        close = close.ffill()
        log_range = log_range.where(observed, 0.0)
        log_volume = log_volume.ffill()
    log_close = np.log(close.to_numpy(dtype="float64"))
    returns = np.full_like(log_close, np.nan)
    returns[1:] = np.diff(log_close)
    return Series(grid.index, log_close, returns, log_range.to_numpy(dtype="float64"),
                  log_volume.to_numpy(dtype="float64"), observed)


def _run_counts(mask: np.ndarray) -> np.ndarray:
    """c[i] = number of True in mask[:i] (cumulative, with a leading 0)."""
    return np.concatenate([[0], np.cumsum(mask.astype(np.int64))])


def complete_origins(s: Series, lookback: int, horizon: int, with_targets: bool) -> np.ndarray:
    """Grid indices t whose rows t-lookback..t (and t+1..t+horizon if ``with_targets``) all
    exist. These are the only origins used for training or validation."""
    n = len(s.log_close)
    last = n - 1 - (horizon if with_targets else 0)
    t = np.arange(lookback, last + 1)
    if t.size == 0:
        return t
    counts = _run_counts(s.observed)
    hi = t + (horizon if with_targets else 0) + 1
    full = counts[hi] - counts[t - lookback] == hi - (t - lookback)
    return t[full]


def inputs(s: Series, origins: np.ndarray, lookback: int, sigma_train: float):
    """Model inputs of the origins. -> X (n, lookback, N_FEATURES) float32, sigma (n,)."""
    idx = origins[:, None] + np.arange(-lookback + 1, 1)[None, :]  # (n, L) rows t-L+1..t
    r = s.returns[idx]  # (n, L)
    sigma = scaling.window_sigma(r)
    hours = s.times.hour.to_numpy()[idx] * (2 * np.pi / 24)
    level = np.log(sigma / sigma_train)[:, None].repeat(lookback, axis=1)
    x = np.stack([
        r / sigma[:, None],
        s.log_range[idx] / sigma[:, None],
        scaling.standardise(s.log_volume[idx]),
        np.sin(hours), np.cos(hours),
        level,
    ], axis=-1)
    return x.astype(np.float32), sigma


def log_returns_ahead(s: Series, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(n, H) log(close[t+h] / close[t]) for h = 1..H."""
    idx = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    return s.log_close[idx] - s.log_close[origins][:, None]
