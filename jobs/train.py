"""The train job: fit a model on a market's recent closed candles, judge it, promote it or not.

The gate: a new model is promoted only if, on the validation slice (the latest steps of its own
training span), its median is at least as accurate as the naive forecast and not worse than the
model promoted now, scored on the same origins, and at no horizon does a yardstick have a lower
interval score than its band by more than chance (the per-horizon block test of
forecaster/calibrate.py; training already serves a yardstick, alone or in the mean of the leading
bands, wherever it wins beyond chance, so this only catches a bug). Bands are not compared with the promoted model's on that slice: the older
model was fitted on most of it and would look better than it is, which would keep stale models.
Promotion happens in one transaction with storing the weights, so a crash or kill at any moment
leaves the previous promoted model in place.

A training up to a given time (`until`) is not promoted unless asked (`promote=True`). It is judged
against naive and the model-free bands only (the comparison with the promoted model decides a
promotion, and a promoted model trained on later candles has seen the future of its validation
slice); if it passes it stays `trained`, for `forecaster predict --at` to forecast past origins with.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from core.market import Market
from core.names import Job, ModelStatus
from db.candles import load_frame, newest_open_time
from db.model_runs import (load_weights, promote as promote_run, promoted_run, prune_weights, record_failed,
                           record_trained, start_model_run)
from jobs.errors import JobError
from jobs.figures import band_verdict, validation_line
from jobs.recording import one_line, recorded

if TYPE_CHECKING:
    from core.records import TrainingMetrics
    from jobs.bootstrap import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    market: Market
    model_run_id: int
    status: str
    metrics: TrainingMetrics
    reason: str

    def summary(self) -> str:
        m = self.metrics
        trained = (f"{m.epochs} LSTM epochs in {m.train_seconds:.1f}s on {m.device}"
                   if m.epochs else f"bands fit in {m.train_seconds:.1f}s, no network trained")
        band = "?" if m.band_source is None else m.band_source
        return (f"{self.market}: model run {self.model_run_id} {self.status} ({self.reason}); "
                f"{validation_line(m)}, band {band}; {trained}")


def model_config(settings, interval: str = "1h", **overrides):
    """The model's hyperparameters for a market of `interval`: the interval's defaults
    (forecaster/defaults.py), FORECASTER_HORIZON if set, FORECASTER_MODEL_OVERRIDES, then
    `overrides`."""
    from forecaster.config import ModelConfig
    return ModelConfig.for_interval(interval, **{"horizon": settings.horizon_for(interval),
                                                 **settings.model_override_dict(), **overrides})


def train_market(services: Services, market: Market, *, train_hours: int, until: datetime | None = None,
                 promote: bool | None = None, stop=None, config=None, fit=None,
                 before_write: Callable[[], None] | None = None) -> TrainOutcome:
    """Train and judge a model. `promote` (default: only when `until` is not given) says whether a
    model that passes the gate replaces the promoted one. `fit` (default `forecaster.train.train`)
    is the seam where tests put a failing trainer. `before_write` is called before the result is
    written and raises to stop (the daemon's check that it still holds this job's lock); `stop`
    (Event-like) is checked between epochs."""
    from forecaster.device import resolve_device
    from forecaster.errors import NotEnoughHistory
    from forecaster.train import train

    fit = fit or train
    check = before_write or (lambda: None)
    settings, sessions = services.settings, services.sessions
    config = config or model_config(settings, market.interval)
    device = resolve_device(settings.device)
    with recorded(sessions, Job.TRAIN, market) as record:
        frame = _training_frame(sessions, market, max(train_hours, config.volatility_steps), until)
        check()
        with sessions() as s, s.begin():
            run_id = start_model_run(session=s, market=market, device=str(device),
                                     config=config.to_dict(),
                                     train_start=frame.index[max(0, len(frame) - train_hours)].to_pydatetime(),
                                     train_end=frame.index[-1].to_pydatetime())
        try:
            result = fit(frame, config, device, train_steps=train_hours, stop=stop,
                         progress=_progress_logger(market))
            may_promote = until is None if promote is None else promote
            status, reason = _gate(services, market, result, frame, compare_with_promoted=may_promote)
            check()
        except Exception as exc:  # NotEnoughHistory, TrainingCancelled, LockLost, or a bug: recorded, re-raised
            # A lost lock stops the training through `stop`; name the cause, not the cancellation.
            lost = exc if isinstance(exc, JobError) else _lock_lost(before_write)
            _record_failed(sessions, run_id, lost or exc)
            if lost is not None and lost is not exc:
                raise lost from exc
            if isinstance(exc, NotEnoughHistory):
                raise JobError(f"{market}: {one_line(exc)}") from exc
            raise
        if status == ModelStatus.PROMOTED and not may_promote:
            status, reason = ModelStatus.TRAINED, f"{reason}; not promoted: trained up to a past time (--promote serves it)"
        with sessions() as s, s.begin():
            # The status guards fence off a worker that lost its lock between `check()` and here:
            # the run was marked failed by the worker that took the lock, and stays so.
            stored = record_trained(session=s, run_id=run_id, metrics=result.metrics, weights=result.weights,
                                    status=ModelStatus.TRAINED if status == ModelStatus.PROMOTED else status)
            if stored and status == ModelStatus.PROMOTED:
                stored = promote_run(session=s, run_id=run_id, market=market)
            if not stored:
                s.rollback()
                raise JobError(f"{market}: model run {run_id} was marked failed by another worker while it "
                               "trained (this worker had lost its lock): its result is dropped")
            prune_weights(session=s, market=market, keep=settings.keep_models)
        record.rows = result.metrics.n_train
        record.message = f"model run {run_id} {status}: {reason}"
        return TrainOutcome(market, run_id, status, result.metrics, reason)


def _lock_lost(before_write) -> JobError | None:
    if before_write is None:
        return None
    try:
        before_write()
    except JobError as lost:
        return lost
    return None


def _record_failed(sessions, run_id: int, exc: Exception) -> None:
    """Mark the run failed (unless another worker did already). The database may be what failed:
    then the run stays `training` until the next run of this job marks it abandoned."""
    try:
        with sessions() as s, s.begin():
            record_failed(session=s, run_id=run_id, error=one_line(exc))
    except Exception as db_exc:
        log.warning("could not mark model run %s failed: %s", run_id, one_line(db_exc))


def _training_frame(sessions, market: Market, steps: int, until: datetime | None):
    with sessions() as s:
        newest = newest_open_time(session=s, market=market)
        if newest is None:
            raise JobError(f"{market}: no candles stored yet: run `forecaster ingest` or `forecaster import-csv`")
        end = min(until, newest) if until else newest
        frame = load_frame(session=s, market=market, since=end - steps * market.period.step, until=end)
    if frame.empty:
        raise JobError(f"{market}: no candles up to {end:%Y-%m-%dT%H:%M}Z")
    return frame


def _gate(services: Services, market: Market, result, frame, *, compare_with_promoted: bool = True) -> tuple[str, str]:
    from forecaster.errors import OutdatedModel
    from forecaster.predict import Forecaster, evaluate

    m = result.metrics
    if not _or(m.val_mae, float("inf")) <= _or(m.val_naive_mae, 0.0):
        return ModelStatus.REJECTED, f"validation MAE {m.val_mae:.6g} is worse than naive {m.val_naive_mae:.6g}"
    if m.band_beaten_at:
        return ModelStatus.REJECTED, f"a yardstick beats its band beyond chance at horizons {m.band_beaten_at}"
    if not compare_with_promoted:
        return ModelStatus.PROMOTED, f"at least as accurate as naive, {band_verdict(m)}"
    with services.sessions() as s:
        current = promoted_run(session=s, market=market)
        old_weights = load_weights(session=s, run_id=current.id) if current else None
    if old_weights is None:
        return ModelStatus.PROMOTED, f"first model of this market, at least as accurate as naive, {band_verdict(m)}"
    try:
        old = Forecaster.load(old_weights)
    except OutdatedModel:
        return ModelStatus.PROMOTED, f"replaces model run {current.id}, made by an older release"
    new = Forecaster.load(result.weights)
    if old.config.horizon != new.config.horizon:
        return ModelStatus.PROMOTED, f"replaces model run {current.id}, whose horizon differs"
    origins = _validation_origins(frame, new.config)
    old_score, new_score = evaluate(old, frame, origins), evaluate(new, frame, origins)
    # Not "validation MAE": these origins are not quite the validation figures' (val_mae), and one
    # figure under two names would read as a contradiction beside `forecaster status`.
    head_to_head = f"head to head on {len(origins)} recent origins"
    if new_score["mae"] > old_score["mae"]:
        return ModelStatus.REJECTED, (f"{head_to_head}, MAE {new_score['mae']:.6g} is worse than promoted model "
                            f"{current.id}'s {old_score['mae']:.6g}")
    return ModelStatus.PROMOTED, (f"{head_to_head}, MAE {new_score['mae']:.6g} <= promoted model {current.id}'s "
                        f"{old_score['mae']:.6g}; {band_verdict(m)}")


def _or(value, default):
    """`value`, or `default` for a figure the training did not measure."""
    return default if value is None else value


def _validation_origins(frame, config):
    index = frame.index
    return index[-config.val_steps:-config.horizon] if len(index) > config.val_steps else index[:-config.horizon]


def _progress_logger(market: Market):
    def report(epoch: int, n_epochs: int, train_loss: float, val_loss: float) -> None:
        log.info("train %s: epoch %d/%d train loss %.4f val loss %.4f", market, epoch, n_epochs, train_loss, val_loss)
    return report

