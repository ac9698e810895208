"""Walk-forward evaluation, exactly as in CONTRACT.md "Walk-forward evaluation".

L = newest open_time, H = horizon, D = days, S = step. Origins are L - H h - k*S h for
k = 0 .. D*24/S - 1 (the last one at L - H h), keeping those where a candle exists. A model is
fit at the first origin and again whenever the latest fit is >= retrain_every hours older than
the origin: the LSTM on the candles in (origin - train_hours, origin], the volatility model on
(origin - config.volatility_hours, origin]. Between fits the latest fit forecasts. Every forecast
sees only candles with open_time <= its origin; so does every model-free yardstick band scored
beside it (forecaster/bands.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import bands, metrics, windows
from .config import ModelConfig
from .errors import NotEnoughHistory
from .frames import HOUR, candles_frame, hourly_grid
from .predict import Forecaster
from .train import train

DEFAULTS = {"days": 90, "step": 1, "retrain_every": 168, "train_hours": 4320, "horizon": 24}


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


def plan_walk_forward(open_times, *, days: int = DEFAULTS["days"], step: int = DEFAULTS["step"],
                      retrain_every: int = DEFAULTS["retrain_every"],
                      horizon: int = DEFAULTS["horizon"]) -> WalkForwardPlan:
    """The origins and the fit schedule of a walk-forward run; no training."""
    times = pd.DatetimeIndex(open_times)
    if len(times) == 0:
        raise NotEnoughHistory("no candles")
    last = times.max()
    n = (days * 24) // step if step > 0 else 0
    grid = pd.DatetimeIndex([last - horizon * HOUR - k * step * HOUR for k in range(n)][::-1])
    origins = grid[grid.isin(times)]
    fit_origins, fit_index = [], []
    for o in origins:
        if not fit_origins or o - fit_origins[-1] >= retrain_every * HOUR:
            fit_origins.append(o)
        fit_index.append(len(fit_origins) - 1)
    return WalkForwardPlan(origins, pd.DatetimeIndex(fit_origins), np.asarray(fit_index, int))


def history_hours(config: ModelConfig, train_hours: int) -> int:
    """Hours before an origin that a fit and its yardsticks read."""
    return max(train_hours, config.volatility_hours, bands.WINDOW_HOURS) + config.lookback


def _fit_block(frame, origins, fit_i, fit_origin, cfg, train_hours, device, stop):
    span = frame.loc[fit_origin - (max(train_hours, cfg.volatility_hours) - 1) * HOUR:fit_origin]
    result = train(span, cfg, device, train_hours=train_hours, stop=stop)
    fc = Forecaster.load(result.weights)
    first = origins.min() - fc.history_hours * HOUR
    pred = fc.forecast_many(frame.loc[first:origins.max()], origins)
    pred["fit_index"] = fit_i
    fit = {"fit_index": fit_i, "origin": fit_origin, "train_seconds": result.metrics["train_seconds"],
           "metrics": result.metrics, "weights": result.weights}
    return pred, fit


def walk_forward(frame: pd.DataFrame, *, days: int = DEFAULTS["days"], step: int = DEFAULTS["step"],
                 retrain_every: int = DEFAULTS["retrain_every"], train_hours: int = DEFAULTS["train_hours"],
                 horizon: int = DEFAULTS["horizon"], config: ModelConfig | None = None,
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
    return score(frame, predictions, fits, horizon)


def yardstick_rows(frame: pd.DataFrame, origins: pd.DatetimeIndex, horizon: int) -> pd.DataFrame:
    """Every model-free band at the origins, as price columns ``<name>_lower``/``<name>_upper``
    per (origin_time, horizon), each from candles at or before its origin only."""
    grid = hourly_grid(frame, end=origins.max())
    s = windows.series_from_grid(grid)
    pos = grid.index.get_indexer(origins)
    close = s.close[pos][:, None]
    out = pd.DataFrame({"origin_time": np.repeat(origins, horizon),
                        "horizon": np.tile(np.arange(1, horizon + 1), len(origins))})
    for name, band in bands.yardsticks(s.log_close, pos, horizon).items():
        out[f"{name}_lower"] = (close * np.exp(band[..., 0])).ravel()
        out[f"{name}_upper"] = (close * np.exp(band[..., 1])).ravel()
    return out


def score(frame, predictions, fits, horizon) -> BacktestResult:
    """The per-horizon table and the summary of forecasts next to naive and the yardsticks."""
    origins = pd.DatetimeIndex(predictions["origin_time"].unique())
    free = yardstick_rows(frame, origins, horizon)
    scored = metrics.attach_actuals(predictions.merge(free, on=["origin_time", "horizon"]), frame)
    summary = metrics.summary(scored)
    summary.update(n_origins=int(predictions["origin_time"].nunique()), n_fits=len(fits),
                   fit_seconds=float(sum(f["train_seconds"] for f in fits)),
                   ratio=metrics.bootstrap_ratio(scored, "empirical"),
                   sources=[f["metrics"].get("band_source") for f in fits])
    return BacktestResult(predictions, fits, metrics.per_horizon_table(scored), summary)
