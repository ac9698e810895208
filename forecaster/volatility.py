"""The volatility model: how wide the next h hours' move is likely to be, from the past alone.

Three things drive the width of an h-hour band, each measured on the history before the origin:
- the hour of the week (Andersen & Bollerslev 1997): crypto trades round the clock, but hours when
  Asian, European and US markets overlap move more, and weekends move less. ``season`` holds one
  factor per hour of the week, the product of an hour-of-day and a day-of-week factor (mean
  absolute hourly return at that hour or day over the overall one), shrunk toward 1;
- volatility of the last day, week and month (HAR, Corsi 2009), from squared returns and from the
  high/low range (Parkinson 1980), each with the season divided out. Long memory: the last day
  drives the next hour, the last month the next day, where volatility has reverted already;
- the shape of returns scaled by that forecast (filtered historical simulation): the 10% and 90%
  quantiles of ``R_h / scale_h`` over the recent past, so fat tails and skew come from the data.

Per horizon h, ``scale_h(t) = units_h(t) * (beta_h . [1, features(t)])`` where ``units_h(t)`` =
sqrt(sum_{j=1..h} season(t + j)^2) and beta_h is fit by least squares of |R_h| / units_h on the
features over the fit span; the band is ``[q10_h, q90_h] * scale_h(t)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .bands import LOWER, UPPER, h_returns
from .errors import NotEnoughHistory

FEATURE_HOURS = (24, 168, 720)  # realised volatility over a day, a week, a month
SEASON_SHRINK = 0.2  # weight of 1 in each seasonal factor: s = 0.8 * raw + 0.2
QUANTILE_HOURS = 4320  # the shape of scaled returns comes from the latest 180 days
MIN_FIT_SAMPLES = 200
_PARKINSON = 4.0 * np.log(2.0)
HOURS_PER_WEEK = 168


def hour_of_week(times: pd.DatetimeIndex) -> np.ndarray:
    """0..167, Monday 00:00 UTC = 0."""
    return times.day_of_week.to_numpy() * 24 + times.hour.to_numpy()


def seasonal_factors(returns: np.ndarray, how: np.ndarray, shrink: float = SEASON_SHRINK) -> np.ndarray:
    """(168,) factors s(hour of week) with mean(s^2) = 1, from hourly log returns (NaN ignored) and
    the hour of week of each: the product of hour-of-day and day-of-week factors (mean |r| there
    over the overall mean), shrunk toward 1. Too little data gives all ones."""
    ok = np.isfinite(returns)
    r, slot = np.abs(returns[ok]), np.asarray(how)[ok]
    overall = r.mean() if r.size else 0.0
    if r.size < HOURS_PER_WEEK * 4 or overall <= 0:
        return np.ones(HOURS_PER_WEEK)
    hour, day = slot % 24, slot // 24
    by_hour = np.array([r[hour == h].mean() / overall if (hour == h).any() else 1.0 for h in range(24)])
    by_day = np.array([r[day == d].mean() / overall if (day == d).any() else 1.0 for d in range(7)])
    s = (1 - shrink) * (by_day[:, None] * by_hour[None, :]).ravel() + shrink
    return s / np.sqrt(np.mean(s ** 2))


def horizon_units(season: np.ndarray, how_at_origin: np.ndarray, horizon: int) -> np.ndarray:
    """sqrt(sum_{j=1..h} s(how + j)^2) per origin and horizon. -> (n, H)"""
    slots = (np.asarray(how_at_origin)[:, None] + np.arange(1, horizon + 1)[None, :]) % HOURS_PER_WEEK
    return np.sqrt(np.cumsum(season[slots] ** 2, axis=1))


def _trailing_mean(x: np.ndarray, hours: int) -> np.ndarray:
    # A young series (a new market, a short back-fill) gets its longer windows from what it has:
    # the first day is enough to start.
    return pd.Series(x).rolling(hours, min_periods=min(FEATURE_HOURS)).mean().to_numpy()


def features(log_close: np.ndarray, log_range: np.ndarray, how: np.ndarray,
             season: np.ndarray) -> np.ndarray:
    """(N, 2 * len(FEATURE_HOURS)) deseasonalised realised volatilities at each hour, from rows at
    or before it: sqrt of the trailing mean of r^2 and of the Parkinson variance (range^2 / 4 ln 2).
    NaN during the first day."""
    s2 = season[how] ** 2
    r = np.diff(log_close, prepend=np.nan)
    sq = r * r / s2
    park = log_range * log_range / _PARKINSON / s2
    cols = [np.sqrt(_trailing_mean(v, w)) for v in (sq, park) for w in FEATURE_HOURS]
    return np.stack(cols, axis=1)


@dataclass
class VolatilityModel:
    """A fitted volatility model (module docstring); plain arrays, saved as JSON with a model."""

    season: np.ndarray  # (168,)
    beta: np.ndarray  # (H, 1 + F)
    z: np.ndarray  # (H, 2) LOWER and UPPER quantiles of R_h / scale_h
    floor: np.ndarray  # (H,) smallest scale per unit allowed (a tenth of the median fitted one)

    @property
    def horizon(self) -> int:
        return len(self.beta)

    def to_dict(self) -> dict:
        return {k: np.asarray(getattr(self, k)).tolist() for k in ("season", "beta", "z", "floor")}

    @classmethod
    def from_dict(cls, d: dict) -> VolatilityModel:
        return cls(*(np.asarray(d[k], dtype=np.float64) for k in ("season", "beta", "z", "floor")))

    def scale(self, log_close, log_range, times, origins) -> np.ndarray:
        """(n, H) expected |h-hour log return| from each origin (grid indices), from rows <= it."""
        how = hour_of_week(times)
        x = features(log_close, log_range, how, self.season)[origins]
        per_unit = np.maximum(np.c_[np.ones(len(x)), x] @ self.beta.T, self.floor[None, :])
        return per_unit * horizon_units(self.season, how[origins], self.horizon)

    def band(self, log_close, log_range, times, origins) -> np.ndarray:
        """(n, H, 2) 10% and 90% quantiles of the log return from each origin."""
        return self.scale(log_close, log_range, times, origins)[..., None] * self.z[None, :, :]


def fit_volatility(log_close: np.ndarray, log_range: np.ndarray, times: pd.DatetimeIndex,
                   horizon: int, end: int | None = None) -> VolatilityModel:
    """Fit on grid rows <= ``end`` (default: the last): only returns whose target is at or before
    ``end`` are used. Raises NotEnoughHistory with too few complete samples."""
    end = len(log_close) - 1 if end is None else end
    log_close, log_range, times = log_close[: end + 1], log_range[: end + 1], times[: end + 1]
    how = hour_of_week(times)
    season = seasonal_factors(np.diff(log_close, prepend=np.nan), how)
    x = features(log_close, log_range, how, season)
    design = np.c_[np.ones(len(x)), x]
    units = horizon_units(season, how, horizon)
    target = h_returns(log_close, horizon) / units  # NaN where the target is past `end`
    beta = np.empty((horizon, design.shape[1]))
    z = np.empty((horizon, 2))
    floor = np.empty(horizon)
    for h in range(horizon):
        ok = np.isfinite(design).all(axis=1) & np.isfinite(target[:, h])
        if ok.sum() < MIN_FIT_SAMPLES:
            raise NotEnoughHistory(
                f"{ok.sum()} complete hours for the volatility model at horizon {h + 1}; it needs "
                f"{MIN_FIT_SAMPLES} (about {min(FEATURE_HOURS) + MIN_FIT_SAMPLES + horizon}+ hours)")
        beta[h] = np.linalg.lstsq(design[ok], np.abs(target[ok, h]), rcond=None)[0]
        fitted = design[ok] @ beta[h]
        floor[h] = 0.1 * np.median(fitted)
        scaled = target[ok, h] / np.maximum(fitted, floor[h])
        recent = scaled[np.flatnonzero(ok) > end - QUANTILE_HOURS]
        z[h] = np.quantile(recent if recent.size >= MIN_FIT_SAMPLES // 2 else scaled, (LOWER, UPPER))
    return VolatilityModel(season, beta, z, floor)
