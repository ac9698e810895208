"""Leak-free scaling as small functions: statistics, scale, inverse.

Two kinds of statistics, both fit only on what the model may see:
- per sample, from its own lookback window: the realised volatility ``sigma`` of hourly
  log-returns (inputs and targets are divided by it, so the band follows volatility regimes)
  and the mean/std of log-volume;
- per model, from the training span only: ``sigma_train``, the hourly volatility over the span,
  stored with the model; the input ``log(sigma / sigma_train)`` tells the model whether the
  window is calm or wild compared with what it was trained on.
Targets are log-returns from the origin's close, in units of ``sigma * sqrt(h)``.
"""
from __future__ import annotations

import numpy as np

SIGMA_FLOOR = 1e-5  # a flat (or fully forward-filled) window must not divide by zero


def window_sigma(returns: np.ndarray) -> np.ndarray:
    """Realised volatility per window. returns: (n, L) hourly log-returns -> (n,)."""
    return np.maximum(returns.std(axis=1), SIGMA_FLOOR)


def span_sigma(returns: np.ndarray) -> float:
    """Hourly volatility over a training span (NaN for gaps are ignored)."""
    finite = returns[np.isfinite(returns)]
    if finite.size < 2:
        return SIGMA_FLOOR
    return float(max(finite.std(), SIGMA_FLOOR))


def standardise(x: np.ndarray) -> np.ndarray:
    """Z-score each window by its own mean and std. x: (n, L) -> (n, L)."""
    mean = x.mean(axis=1, keepdims=True)
    std = x.std(axis=1, keepdims=True)
    return (x - mean) / np.maximum(std, 1e-6)


def target_scale(sigma: np.ndarray, horizon: int) -> np.ndarray:
    """Scale of the h-hour log-return per sample and horizon: sigma * sqrt(h). -> (n, H)."""
    return sigma[:, None] * np.sqrt(np.arange(1, horizon + 1))[None, :]


def scale_targets(log_returns: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """(n, H) log-returns from the origin -> unit-free targets."""
    return log_returns / target_scale(sigma, log_returns.shape[1])


def inverse_targets(z: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Unit-free (n, H[, Q]) model outputs -> log-returns from the origin."""
    scale = target_scale(sigma, z.shape[1])
    return z * (scale[..., None] if z.ndim == 3 else scale)
