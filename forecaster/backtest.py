"""Walk-forward evaluation, exactly as in CONTRACT.md "Walk-forward evaluation".

L = newest open_time, H = horizon, D = days. Origins are L - H h - D*24 h + k*step h for
k = 0, 1, ... while origin + H h < L (see NOTE), keeping those where a candle exists. A model is
fit at the first origin and again whenever the latest fit is >= retrain_every hours older than
the origin, each on the candles in (origin - train_hours, origin]; between fits the latest fit
forecasts. Every forecast sees only candles with open_time <= its origin.

NOTE: the contract's text says ``origin + H <= L`` and also "defaults on a gap-free series give
90 origins and 13 fits"; the inclusive bound gives 91 origins (k = 0..90). We keep the stated
count (and k = 0 as the first origin) with the strict bound: the last origin is L - 2H.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import metrics
from .config import ModelConfig
from .errors import NotEnoughHistory
from .frames import HOUR, candles_frame
from .predict import Forecaster
from .train import train


@dataclass
class WalkForwardPlan:
    origins: pd.DatetimeIndex  # every origin, ascending
    fit_origins: pd.DatetimeIndex  # origins at which a model is (re)fit
    fit_index: np.ndarray  # (len(origins),) which fit forecasts each origin


@dataclass
class BacktestResult:
    predictions: pd.DataFrame  # origin_time, target_time, horizon, yhat, yhat_lower, yhat_upper, fit_index
    fits: list[dict] = field(default_factory=list)  # fit_index, origin, train_seconds, metrics, weights
    table: pd.DataFrame | None = None  # per horizon, see metrics.per_horizon_table
    summary: dict = field(default_factory=dict)


def plan_walk_forward(open_times, *, days: int = 90, step: int = 24, retrain_every: int = 168,
                      horizon: int = 24) -> WalkForwardPlan:
    """The origins and the fit schedule of a walk-forward run; no training."""
    times = pd.DatetimeIndex(open_times)
    if len(times) == 0:
        raise NotEnoughHistory("no candles")
    last = times.max()
    first = last - horizon * HOUR - days * 24 * HOUR
    n = int(np.ceil((days * 24) / step)) if step > 0 else 0
    grid = pd.DatetimeIndex([first + k * step * HOUR for k in range(n)])
    grid = grid[grid + horizon * HOUR < last]
    origins = grid[grid.isin(times)]
    fit_origins, fit_index = [], []
    for o in origins:
        if not fit_origins or o - fit_origins[-1] >= retrain_every * HOUR:
            fit_origins.append(o)
        fit_index.append(len(fit_origins) - 1)
    return WalkForwardPlan(origins, pd.DatetimeIndex(fit_origins), np.asarray(fit_index, int))


def _empirical(frame: pd.DataFrame, origins, train_hours: int, horizon: int) -> pd.DataFrame:
    """The plain empirical band at each origin, from candles in (origin - train_hours, origin]."""
    rows = []
    for o in origins:
        span = frame.loc[o - (train_hours - 1) * HOUR:o]
        lo, hi = metrics.empirical_band(span, span["close"].iloc[-1], range(1, horizon + 1))
        rows.append(pd.DataFrame({"origin_time": o, "horizon": np.arange(1, horizon + 1),
                                  "emp_lower": lo[0], "emp_upper": hi[0]}))
    return pd.concat(rows, ignore_index=True)


def _fit_block(frame, origins, fit_i, fit_origin, cfg, train_hours, device, stop):
    span = frame.loc[fit_origin - (train_hours - 1) * HOUR:fit_origin]
    result = train(span, cfg, device, stop=stop)
    fc = Forecaster.load(result.weights)
    pred = fc.forecast_many(frame.loc[:origins.max()], origins)
    pred["fit_index"] = fit_i
    fit = {"fit_index": fit_i, "origin": fit_origin, "train_seconds": result.metrics["train_seconds"],
           "metrics": result.metrics, "weights": result.weights}
    return pred, fit


def walk_forward(frame: pd.DataFrame, *, days: int = 90, step: int = 24, retrain_every: int = 168,
                 train_hours: int = 4320, horizon: int = 24, config: ModelConfig | None = None,
                 device="cpu", progress=None, stop=None) -> BacktestResult:
    """Run the walk-forward evaluation (module docstring). ``progress(done_fits, n_fits)`` is
    called after each fit; ``stop`` (Event-like) cancels with TrainingCancelled."""
    frame = candles_frame(frame)
    cfg = config or ModelConfig(horizon=horizon)
    if cfg.horizon != horizon:
        cfg = ModelConfig.from_dict({**cfg.to_dict(), "horizon": horizon})
    plan = plan_walk_forward(frame.index, days=days, step=step, retrain_every=retrain_every,
                             horizon=horizon)
    if len(plan.origins) == 0:
        raise NotEnoughHistory("no walk-forward origin has a candle")
    preds, fits = [], []
    for i, fit_origin in enumerate(plan.fit_origins):
        origins = plan.origins[plan.fit_index == i]
        pred, fit = _fit_block(frame, origins, i, fit_origin, cfg, train_hours, device, stop)
        preds.append(pred)
        fits.append(fit)
        if progress is not None:
            progress(i + 1, len(plan.fit_origins))
    predictions = pd.concat(preds, ignore_index=True)
    return _score(frame, predictions, fits, train_hours, horizon)


def _score(frame, predictions, fits, train_hours, horizon) -> BacktestResult:
    emp = _empirical(frame, pd.DatetimeIndex(predictions["origin_time"].unique()), train_hours, horizon)
    scored = metrics.attach_actuals(predictions.merge(emp, on=["origin_time", "horizon"]), frame)
    summary = metrics.summary(scored)
    summary.update(n_origins=int(predictions["origin_time"].nunique()), n_fits=len(fits),
                   fit_seconds=float(sum(f["train_seconds"] for f in fits)))
    return BacktestResult(predictions, fits, metrics.per_horizon_table(scored), summary)
