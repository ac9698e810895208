"""Model-free 80% bands: the yardsticks every band the service serves is judged against.

Each takes the log closes of a grid of steps (NaN where a candle is missing) and grid indices of
origins, and returns the 10% and 90% quantiles of the log-return from each origin's close to
h = 1..H steps later, as an (n, H, 2) array. A band at origin t reads only log closes at indices
<= t (tests change everything after t and check that nothing moves).

- empirical: the quantiles of the past ``window`` steps' h-step log returns (every pair of
  existing closes h steps apart inside (t - window, t]); the window is 180 days.
- ewma: a normal band, +-1.2816 x the EWMA volatility (RiskMetrics, lambda 0.97 per step) x sqrt(h).
- fhs: filtered historical simulation (Barone-Adesi et al. 1999): the quantiles of past h-step
  returns divided by the EWMA volatility (lambda 0.99 per step) known at their start, times
  today's EWMA volatility, times sqrt(h).
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from core.intervals import DEFAULT_INTERVAL, Interval, get_interval

LOWER, UPPER = 0.1, 0.9  # the central 80% band
WINDOW_DAYS = 180  # the training window of the default model
EWMA_LAMBDA = 0.97
FHS_LAMBDA = 0.99
_MIN_RETURNS = 48  # fewer past h-hour returns than this: the quantile is NaN (no band)


def h_returns(log_close: np.ndarray, horizon: int) -> np.ndarray:
    """R[s, h-1] = log_close[s+h] - log_close[s] (NaN past the end or where a close is missing)."""
    n = len(log_close)
    out = np.full((n, horizon), np.nan)
    for h in range(1, horizon + 1):
        out[: n - h, h - 1] = log_close[h:] - log_close[: n - h]
    return out


def _trailing_quantiles(values: np.ndarray, origins: np.ndarray, window: int, horizon: int) -> np.ndarray:
    """For each horizon h, the LOWER/UPPER quantiles of ``values[s, h-1]`` over the starts s whose
    return is known at the origin t and lies in its window: t - window < s and s + h <= t.
    -> (n, H, 2)"""
    out = np.full((len(origins), horizon, 2), np.nan)
    for h in range(1, horizon + 1):
        # value of start s becomes known at s + h: shift so index = the hour it is known
        known = np.full(len(values), np.nan)
        known[h:] = values[: len(values) - h, h - 1]
        roll = pd.Series(known).rolling(window - h, min_periods=_MIN_RETURNS)
        out[:, h - 1, 0] = roll.quantile(LOWER).to_numpy()[origins]
        out[:, h - 1, 1] = roll.quantile(UPPER).to_numpy()[origins]
    return out


def ewma_sigma(log_close: np.ndarray, lam: float) -> np.ndarray:
    """EWMA volatility of hourly log returns at each hour (including that hour's return).
    Missing returns (gaps) leave it unchanged."""
    r = np.diff(log_close, prepend=np.nan)
    var = pd.Series(r * r).ewm(alpha=1 - lam, adjust=False, ignore_na=True).mean()
    return np.sqrt(var.ffill().to_numpy())


def window_steps(interval: str | Interval = DEFAULT_INTERVAL) -> int:
    return get_interval(interval).days(WINDOW_DAYS)


def empirical(log_close: np.ndarray, origins: np.ndarray, horizon: int, window: int) -> np.ndarray:
    return _trailing_quantiles(h_returns(log_close, horizon), origins, window, horizon)


def ewma_normal(log_close: np.ndarray, origins: np.ndarray, horizon: int, window: int = 0,
                lam: float = EWMA_LAMBDA) -> np.ndarray:
    """``window`` is unused (the EWMA has no window): the yardsticks share one signature."""
    z = NormalDist().inv_cdf(UPPER)
    spread = ewma_sigma(log_close, lam)[origins][:, None] * np.sqrt(np.arange(1, horizon + 1))[None, :]
    return np.stack([-z * spread, z * spread], axis=-1)


def fhs(log_close: np.ndarray, origins: np.ndarray, horizon: int, window: int,
        lam: float = FHS_LAMBDA) -> np.ndarray:
    sigma = ewma_sigma(log_close, lam)
    root_h = np.sqrt(np.arange(1, horizon + 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = h_returns(log_close, horizon) / (sigma[:, None] * root_h[None, :])
    z[~np.isfinite(z)] = np.nan
    q = _trailing_quantiles(z, origins, window, horizon)
    return q * (sigma[origins][:, None] * root_h[None, :])[..., None]


YARDSTICKS = {"empirical": empirical, "ewma": ewma_normal, "fhs": fhs}


def yardsticks(log_close: np.ndarray, origins: np.ndarray, horizon: int,
               interval: str | Interval = DEFAULT_INTERVAL) -> dict[str, np.ndarray]:
    """Every model-free band at the origins: name -> (n, H, 2) log-return quantiles."""
    origins = np.asarray(origins, dtype=np.int64)
    window = window_steps(interval)
    return {name: band(log_close, origins, horizon, window) for name, band in YARDSTICKS.items()}
