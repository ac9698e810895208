"""Walk-forward evaluation, exactly as in CONTRACT.md "Walk-forward evaluation", in steps of the
market's interval (an hour for 1h candles, where the contract's text applies word for word).

L = newest open_time, H = horizon, D = days, S = step, d = steps per day. Origins are
L - (H + k*S) steps for k = 0 .. D*d/S - 1 (the last one at L - H steps), keeping those where a
candle exists. A model is fit at the first origin and again whenever the latest fit is
>= retrain_every steps older than the origin: the LSTM on the candles in (origin - train_steps,
origin], the volatility model on (origin - config.volatility_steps, origin]. Between fits the
latest fit forecasts. Every forecast sees only candles with open_time <= its origin; so does every
model-free yardstick band scored beside it (forecaster/bands.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.intervals import DEFAULT_INTERVAL, Interval, get_interval

from . import bands, metrics, sources
from .config import ModelConfig
from .errors import NotEnoughHistory
from .frames import candles_frame
from .defaults import backtest_defaults
from .predict import Forecaster
from core.records import BacktestSummary
from .train import train


defaults = backtest_defaults  # forecaster/defaults.py: defined once


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
    summary: BacktestSummary | None = None
    scored: pd.DataFrame | None = None  # predictions with actual, naive and every yardstick's band


def plan_walk_forward(open_times, *, days: int | None = None, step: int = 1, retrain_every: int | None = None,
                      horizon: int | None = None, interval: str | Interval = DEFAULT_INTERVAL) -> WalkForwardPlan:
    """The origins and the fit schedule of a walk-forward run; no training. Lengths in steps of
    ``interval``; None takes the interval's default."""
    iv = get_interval(interval)
    d = defaults(iv)
    days, retrain_every = days or d["days"], retrain_every or d["retrain_every"]
    horizon = horizon or d["horizon"]
    times = pd.DatetimeIndex(open_times)
    if len(times) == 0:
        raise NotEnoughHistory("no candles")
    last, one = times.max(), pd.Timedelta(iv.step)
    n = (days * iv.steps_per_day) // step if step > 0 else 0
    grid = pd.DatetimeIndex([last - (horizon + k * step) * one for k in range(n)][::-1])
    origins = grid[grid.isin(times)]
    fit_origins, fit_index = [], []
    for o in origins:
        if not fit_origins or o - fit_origins[-1] >= retrain_every * one:
            fit_origins.append(o)
        fit_index.append(len(fit_origins) - 1)
    return WalkForwardPlan(origins, pd.DatetimeIndex(fit_origins), np.asarray(fit_index, int))


def history_steps(config: ModelConfig, train_steps: int) -> int:
    """Steps before an origin that a fit and its yardsticks read."""
    return max(train_steps, config.volatility_steps, bands.window_steps(config.step)) + config.lookback


def _fit_block(frame, origins, fit_i, fit_origin, cfg, train_steps, device, stop):
    one = pd.Timedelta(cfg.step.step)
    span = frame.loc[fit_origin - (max(train_steps, cfg.volatility_steps) - 1) * one:fit_origin]
    result = train(span, cfg, device, train_steps=train_steps, stop=stop)
    fc = Forecaster.load(result.weights)
    first = origins.min() - (max(fc.history_steps, sources.history_steps(fc.fitted, cfg.step)) + 1) * one
    # the yardsticks that need fitting (GARCH) are fit with the model, on the same window; the
    # volatility model's own band is kept too, for benchmarks
    pred = fc.forecast_many(frame.loc[first:origins.max()], origins, bands=list(sources.SOURCES))
    pred["fit_index"] = fit_i
    fit = {"fit_index": fit_i, "origin": fit_origin, "train_seconds": result.metrics.train_seconds,
           "metrics": result.metrics, "weights": result.weights}
    return pred, fit


def walk_forward(frame: pd.DataFrame, *, days: int | None = None, step: int = 1,
                 retrain_every: int | None = None, train_steps: int | None = None,
                 horizon: int | None = None, config: ModelConfig | None = None,
                 device="cpu", progress=None, stop=None) -> BacktestResult:
    """Run the walk-forward evaluation (module docstring) on candles of ``config.interval``
    (default 1h). None takes the interval's default. ``progress(done_fits, n_fits)`` is called
    after each fit; ``stop`` (Event-like) cancels with TrainingCancelled."""
    cfg = config or ModelConfig.for_interval()
    d = defaults(cfg.interval)
    horizon, train_steps = horizon or cfg.horizon, train_steps or d["train_steps"]
    if cfg.horizon != horizon:
        cfg = ModelConfig.from_dict({**cfg.to_dict(), "horizon": horizon})
    frame = candles_frame(frame, cfg.step)
    plan = plan_walk_forward(frame.index, days=days, step=step, retrain_every=retrain_every,
                             horizon=horizon, interval=cfg.interval)
    if len(plan.origins) == 0:
        raise NotEnoughHistory("no walk-forward origin has a candle")
    preds, fits = [], []
    for i, fit_origin in enumerate(plan.fit_origins):
        origins = plan.origins[plan.fit_index == i]
        pred, fit = _fit_block(frame, origins, i, fit_origin, cfg, train_steps, device, stop)
        preds.append(pred)
        fits.append(fit)
        if progress is not None:
            progress(i + 1, len(plan.fit_origins))
    predictions = pd.concat(preds, ignore_index=True)
    return score(frame, predictions, fits, horizon, cfg.interval)


def score(frame, predictions, fits, horizon, interval: str | Interval = DEFAULT_INTERVAL) -> BacktestResult:
    """The per-horizon table and the summary of forecasts (with their yardsticks' columns, see
    ``Forecaster.forecast_many``) next to naive and the yardsticks."""
    iv = get_interval(interval)
    scored = metrics.attach_actuals(predictions, frame)
    summary = BacktestSummary(n_origins=int(predictions["origin_time"].nunique()), n_fits=len(fits),
                              fit_seconds=float(sum(f["train_seconds"] for f in fits)),
                              figures=metrics.summary(scored),
                              ratio=metrics.bootstrap_ratio(scored, "empirical",
                                                            block=pd.Timedelta(iv.step) * iv.bootstrap_block(horizon)),
                              sources=[f["metrics"].band_source for f in fits])
    keep = [c for c in predictions if not c.endswith(("_lower", "_upper")) or c.startswith("yhat")]
    return BacktestResult(predictions[keep], fits, metrics.per_horizon_table(scored), summary, scored)
