"""The volatility model: how wide the next h steps' move is likely to be, from the past alone.

Three things drive the width of an h-step band, each measured on the history before the origin:
- the time of the week (Andersen & Bollerslev 1997): crypto trades round the clock, but hours when
  Asian, European and US markets overlap move more, and weekends move less. ``season`` holds one
  factor per slot of the week (core/intervals.py: hour of the week for 1h candles, day of the
  week for 1d), the product of a step-of-day and a day-of-week factor (mean absolute return there
  over the overall one), shrunk toward 1;
- volatility of the last day, week and month (HAR, Corsi 2009), from squared returns and from the
  high/low range (Parkinson 1980), each with the season divided out. Long memory: the last day
  drives the next hour, the last month the next day, where volatility has reverted already;
- the shape of returns scaled by that forecast (filtered historical simulation): the 10% and 90%
  quantiles of ``R_h / scale_h`` over the last 180 days, so fat tails and skew come from the data.

Per horizon h, ``scale_h(t) = units_h(t) * (beta_h . [1, features(t)])`` where ``units_h(t)`` =
sqrt(sum_{j=1..h} season(t + j)^2) and beta_h is fit by least squares of |R_h| / units_h on the
features over the fit span; the band is ``[q10_h, q90_h] * scale_h(t)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.intervals import DEFAULT_INTERVAL, Interval, get_interval

from .bands import LOWER, UPPER, h_returns
from .errors import NotEnoughHistory

FEATURE_DAYS = (1, 7, 30)  # realised volatility over a day, a week, a month
SEASON_SHRINK = 0.2  # weight of 1 in each seasonal factor: s = 0.8 * raw + 0.2
QUANTILE_DAYS = 180  # the shape of scaled returns comes from the latest 180 days
MIN_FIT_SAMPLES = 200
_PARKINSON = 4.0 * np.log(2.0)


def feature_steps(interval: Interval) -> tuple[int, ...]:
    return tuple(interval.days(d) for d in FEATURE_DAYS)


def seasonal_factors(returns: np.ndarray, slot: np.ndarray, interval: str | Interval = DEFAULT_INTERVAL,
                     shrink: float = SEASON_SHRINK) -> np.ndarray:
    """(slots per week,) factors s(slot of the week) with mean(s^2) = 1, from log returns (NaN
    ignored) and the slot of each (Interval.slot_of_week): the product of step-of-day and
    day-of-week factors (mean |r| there over the overall mean), shrunk toward 1. Too little data
    (under four weeks) gives all ones."""
    iv = get_interval(interval)
    per_day, slots = iv.steps_per_day, iv.slots_per_week
    ok = np.isfinite(returns)
    r, slot = np.abs(returns[ok]), np.asarray(slot)[ok]
    overall = r.mean() if r.size else 0.0
    if r.size < slots * 4 or overall <= 0:
        return np.ones(slots)
    step, day = slot % per_day, slot // per_day
    by_step = np.array([r[step == k].mean() / overall if (step == k).any() else 1.0 for k in range(per_day)])
    by_day = np.array([r[day == d].mean() / overall if (day == d).any() else 1.0 for d in range(7)])
    s = (1 - shrink) * (by_day[:, None] * by_step[None, :]).ravel() + shrink
    return s / np.sqrt(np.mean(s ** 2))


def horizon_units(season: np.ndarray, slot_at_origin: np.ndarray, horizon: int) -> np.ndarray:
    """sqrt(sum_{j=1..h} s(slot + j)^2) per origin and horizon. -> (n, H)"""
    slots = (np.asarray(slot_at_origin)[:, None] + np.arange(1, horizon + 1)[None, :]) % len(season)
    return np.sqrt(np.cumsum(season[slots] ** 2, axis=1))


def _trailing_mean(x: np.ndarray, steps: int, min_steps: int) -> np.ndarray:
    # A young series (a new market, a short back-fill) gets its longer windows from what it has:
    # the first day is enough to start.
    return pd.Series(x).rolling(steps, min_periods=min_steps).mean().to_numpy()


def features(log_close: np.ndarray, log_range: np.ndarray, slot: np.ndarray, season: np.ndarray,
             interval: str | Interval = DEFAULT_INTERVAL) -> np.ndarray:
    """(N, 2 * len(FEATURE_DAYS)) deseasonalised realised volatilities at each step, from rows at
    or before it: sqrt of the trailing mean of r^2 and of the Parkinson variance (range^2 / 4 ln 2)
    over a day, a week and a month. NaN during the first day."""
    windows = feature_steps(get_interval(interval))
    s2 = season[slot] ** 2
    r = np.diff(log_close, prepend=np.nan)
    sq = r * r / s2
    park = log_range * log_range / _PARKINSON / s2
    cols = [np.sqrt(_trailing_mean(v, w, min(windows))) for v in (sq, park) for w in windows]
    return np.stack(cols, axis=1)


@dataclass
class VolatilityModel:
    """A fitted volatility model (module docstring); plain arrays, saved as JSON with a model."""

    interval: Interval
    season: np.ndarray  # (slots per week,)
    beta: np.ndarray  # (H, 1 + F)
    z: np.ndarray  # (H, 2) LOWER and UPPER quantiles of R_h / scale_h
    floor: np.ndarray  # (H,) smallest scale per unit allowed (a tenth of the median fitted one)

    @property
    def horizon(self) -> int:
        return len(self.beta)

    def to_dict(self) -> dict:
        return {"interval": self.interval.name,
                **{k: np.asarray(getattr(self, k)).tolist() for k in ("season", "beta", "z", "floor")}}

    @classmethod
    def from_dict(cls, d: dict) -> VolatilityModel:
        return cls(get_interval(d.get("interval", DEFAULT_INTERVAL)),
                   *(np.asarray(d[k], dtype=np.float64) for k in ("season", "beta", "z", "floor")))

    def scale(self, log_close, log_range, times, origins) -> np.ndarray:
        """(n, H) expected |h-step log return| from each origin (grid indices), from rows <= it."""
        slot = self.interval.slot_of_week(times)
        x = features(log_close, log_range, slot, self.season, self.interval)[origins]
        per_unit = np.maximum(np.c_[np.ones(len(x)), x] @ self.beta.T, self.floor[None, :])
        return per_unit * horizon_units(self.season, slot[origins], self.horizon)

    def band(self, log_close, log_range, times, origins) -> np.ndarray:
        """(n, H, 2) 10% and 90% quantiles of the log return from each origin."""
        return self.scale(log_close, log_range, times, origins)[..., None] * self.z[None, :, :]


def fit_volatility(log_close: np.ndarray, log_range: np.ndarray, times: pd.DatetimeIndex,
                   horizon: int, end: int | None = None,
                   interval: str | Interval = DEFAULT_INTERVAL) -> VolatilityModel:
    """Fit on grid rows <= ``end`` (default: the last): only returns whose target is at or before
    ``end`` are used. Raises NotEnoughHistory with too few complete samples."""
    iv = get_interval(interval)
    end = len(log_close) - 1 if end is None else end
    log_close, log_range, times = log_close[: end + 1], log_range[: end + 1], times[: end + 1]
    slot = iv.slot_of_week(times)
    season = seasonal_factors(np.diff(log_close, prepend=np.nan), slot, iv)
    x = features(log_close, log_range, slot, season, iv)
    design = np.c_[np.ones(len(x)), x]
    units = horizon_units(season, slot, horizon)
    target = h_returns(log_close, horizon) / units  # NaN where the target is past `end`
    beta = np.empty((horizon, design.shape[1]))
    z = np.empty((horizon, 2))
    floor = np.empty(horizon)
    for h in range(horizon):
        ok = np.isfinite(design).all(axis=1) & np.isfinite(target[:, h])
        if ok.sum() < MIN_FIT_SAMPLES:
            raise NotEnoughHistory(
                f"{ok.sum()} complete {iv.name} candles for the volatility model at horizon {h + 1}; it "
                f"needs {MIN_FIT_SAMPLES} (about {min(feature_steps(iv)) + MIN_FIT_SAMPLES + horizon}+ candles)")
        beta[h] = np.linalg.lstsq(design[ok], np.abs(target[ok, h]), rcond=None)[0]
        fitted = design[ok] @ beta[h]
        floor[h] = 0.1 * np.median(fitted)
        scaled = target[ok, h] / np.maximum(fitted, floor[h])
        recent = scaled[np.flatnonzero(ok) > end - iv.days(QUANTILE_DAYS)]
        z[h] = np.quantile(recent if recent.size >= MIN_FIT_SAMPLES // 2 else scaled, (LOWER, UPPER))
    return VolatilityModel(iv, season, beta, z, floor)
