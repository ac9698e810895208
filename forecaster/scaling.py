"""Leak-free scaling as small functions: statistics, scale, inverse.

Two kinds of statistics, both fit only on what the model may see:
- per sample, from its own lookback window: the realised volatility ``sigma`` of hourly
  log-returns (inputs and targets are divided by it, so the band follows volatility regimes)
  and the mean/std of log-volume;
- per model, from the training span only: ``sigma_train``, the hourly volatility over the span,
  stored with the model; the input ``log(sigma / sigma_train)`` tells the model whether the
  window is calm or wild compared with what it was trained on.
- per model, from the training span only: ``season``, 24 intraday volatility
  factors s(hour) (Andersen & Bollerslev 1997): the mean absolute hourly log-return at each
  UTC hour over the overall one, shrunk toward 1 and normalised to mean(s^2) = 1.
Targets are log-returns from the origin's close, in units of
``sigma * sqrt(sum_{j=1..h} s(hour(origin + j))^2)`` (``sigma * sqrt(h)`` when all s = 1,
the default of models saved without seasonal factors).
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


SEASON_SHRINK = 0.2  # weight of 1 in the smoothed factor: s = (1 - w) * raw + w


def seasonal_factors(returns: np.ndarray, hours: np.ndarray,
                     shrink: float = SEASON_SHRINK) -> np.ndarray:
    """Intraday volatility factors s(hour), hour 0..23 UTC, from hourly log-returns and the
    UTC hour of each (NaN returns are ignored). Robust: mean |r| per hour over the overall mean
    |r|; shrunk toward 1; normalised so mean(s^2) = 1 (a 24-hour sum keeps its scale). Hours
    with too few returns get 1. -> (24,)"""
    ok = np.isfinite(returns)
    r, hr = np.abs(returns[ok]), np.asarray(hours)[ok]
    overall = r.mean() if r.size else 0.0
    if r.size < 24 * 10 or overall <= 0:
        return np.ones(24)
    raw = np.ones(24)
    for h in range(24):
        sel = r[hr == h]
        if sel.size >= 10:
            raw[h] = sel.mean() / overall
    s = (1 - shrink) * raw + shrink
    return s / np.sqrt(np.mean(s ** 2))


def horizon_units(origin_hours: np.ndarray, horizon: int, season=None) -> np.ndarray:
    """sqrt(sum_{j=1..h} s(hour(origin + j))^2) per origin and horizon; sqrt(h) without
    ``season``. origin_hours: (n,) UTC hour of each origin. -> (n, H)"""
    n = len(origin_hours)
    if season is None:
        return np.broadcast_to(np.sqrt(np.arange(1, horizon + 1))[None, :], (n, horizon))
    season = np.asarray(season, dtype=np.float64)
    hours = (np.asarray(origin_hours)[:, None] + np.arange(1, horizon + 1)[None, :]) % 24
    return np.sqrt(np.cumsum(season[hours] ** 2, axis=1))


def standardise(x: np.ndarray) -> np.ndarray:
    """Z-score each window by its own mean and std. x: (n, L) -> (n, L)."""
    mean = x.mean(axis=1, keepdims=True)
    std = x.std(axis=1, keepdims=True)
    return (x - mean) / np.maximum(std, 1e-6)


def target_scale(sigma: np.ndarray, horizon: int, units: np.ndarray | None = None) -> np.ndarray:
    """Scale of the h-hour log-return per sample and horizon: sigma * units, where units is
    ``horizon_units`` (default sqrt(h)). -> (n, H)."""
    if units is None:
        return sigma[:, None] * np.sqrt(np.arange(1, horizon + 1))[None, :]
    return sigma[:, None] * units


def scale_targets(log_returns: np.ndarray, sigma: np.ndarray,
                  units: np.ndarray | None = None) -> np.ndarray:
    """(n, H) log-returns from the origin -> unit-free targets."""
    return log_returns / target_scale(sigma, log_returns.shape[1], units)


def inverse_targets(z: np.ndarray, sigma: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
    """Unit-free (n, H[, Q]) model outputs -> log-returns from the origin."""
    scale = target_scale(sigma, z.shape[1], units)
    return z * (scale[..., None] if z.ndim == 3 else scale)
