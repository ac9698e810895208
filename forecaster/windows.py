"""Windows: the lookback inputs and the horizon targets of each origin, on the grid of steps.

An origin ``t`` (an index into the grid) sees grid rows ``t - lookback .. t`` (``lookback``
returns need ``lookback + 1`` closes) and never a row after ``t``; its targets are the closes at
``t + 1 .. t + horizon``.

Inputs are unit-free: each step's return and high/low range are divided by the volatility the
volatility model expects for that slot of the week at the origin (so the LSTM sees calm and wild
weeks alike), log-volume is standardised within the window, the step of the day and the day of
the week are given as angles, and two constants say where short-term volatility stands against
the last month.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.intervals import DEFAULT_INTERVAL, Interval, get_interval

from .volatility import VolatilityModel, features

N_FEATURES = 9


@dataclass
class Series:
    """Per-step arrays of one grid (NaN where a candle is missing)."""

    interval: Interval
    times: pd.DatetimeIndex
    close: np.ndarray  # (N,) the closes as stored (forecasts that do not move equal it exactly)
    log_close: np.ndarray  # (N,)
    returns: np.ndarray  # (N,) log c[i] - log c[i-1]; NaN at 0 and next to a gap
    log_range: np.ndarray  # (N,) log(high / low)
    log_volume: np.ndarray  # (N,) log1p(volume)
    observed: np.ndarray  # (N,) bool: a candle exists at this step

    @property
    def slot(self) -> np.ndarray:
        return self.interval.slot_of_week(self.times)


def series_from_grid(grid: pd.DataFrame, fill: bool = False,
                     interval: str | Interval = DEFAULT_INTERVAL) -> Series:
    """Arrays of a grid (forecaster.frames.step_grid). ``fill`` forward-fills missing steps (a
    flat, zero-range candle with the previous log-volume): used at forecast time only, never for
    training samples."""
    observed = grid["close"].notna().to_numpy()
    close = grid["close"]
    log_range = np.log(grid["high"] / grid["low"])
    log_volume = np.log1p(grid["volume"])
    if fill:
        close = close.ffill()
        log_range = log_range.where(observed, 0.0)
        log_volume = log_volume.ffill()
    close = close.to_numpy(dtype="float64")
    log_close = np.log(close)
    returns = np.diff(log_close, prepend=np.nan)
    return Series(get_interval(interval), grid.index, close, log_close, returns,
                  log_range.to_numpy(dtype="float64"), log_volume.to_numpy(dtype="float64"), observed)


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


def standardise(x: np.ndarray) -> np.ndarray:
    """Z-score each window by its own mean and std. x: (n, L) -> (n, L)."""
    mean = x.mean(axis=1, keepdims=True)
    std = x.std(axis=1, keepdims=True)
    return (x - mean) / np.maximum(std, 1e-6)


@dataclass
class OriginState:
    """What the volatility model says at each origin, computed once for inputs and targets."""

    scale: np.ndarray  # (n, H) expected |h-hour log return|
    step_vol: np.ndarray  # (n,) deseasonalised volatility expected for the next step
    levels: np.ndarray  # (n, 2) log(day / month) and log(week / month) realised volatility


def origin_state(vol: VolatilityModel, s: Series, origins: np.ndarray) -> OriginState:
    feats = features(s.log_close, s.log_range, s.slot, vol.season, s.interval)[origins]
    scale = vol.scale(s.log_close, s.log_range, s.times, origins)
    step_vol = np.maximum(np.c_[np.ones(len(feats)), feats] @ vol.beta[0], vol.floor[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = np.log(feats[:, [0, 1]] / feats[:, [2]])
    return OriginState(scale, step_vol, np.nan_to_num(levels, nan=0.0, posinf=0.0, neginf=0.0))


def inputs(s: Series, origins: np.ndarray, lookback: int, vol: VolatilityModel,
           state: OriginState) -> np.ndarray:
    """Model inputs of the origins. -> X (n, lookback, N_FEATURES) float32."""
    idx = origins[:, None] + np.arange(-lookback + 1, 1)[None, :]  # (n, L) rows t-L+1..t
    slot = s.slot[idx]
    expected = state.step_vol[:, None] * vol.season[slot]  # (n, L) volatility expected each step
    r = np.nan_to_num(s.returns[idx], nan=0.0)
    per_day = s.interval.steps_per_day
    hour = (slot % per_day) * (2 * np.pi / per_day)
    day = (slot // per_day) * (2 * np.pi / 7)
    levels = np.repeat(state.levels[:, None, :], lookback, axis=1)
    x = np.concatenate([
        np.stack([r / expected, s.log_range[idx] / expected, standardise(s.log_volume[idx]),
                  np.sin(hour), np.cos(hour), np.sin(day), np.cos(day)], axis=-1),
        levels,
    ], axis=-1)
    return np.clip(x, -50, 50).astype(np.float32)


def log_returns_ahead(s: Series, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(n, H) log(close[t+h] / close[t]) for h = 1..H."""
    idx = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    return s.log_close[idx] - s.log_close[origins][:, None]
