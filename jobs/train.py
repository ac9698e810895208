"""The train job: fit a model on a market's recent closed candles, judge it, promote it or not.

The gate: a new model is promoted only if, on the validation slice (the latest hours of its own
training span), its median is at least as accurate as the naive forecast and not worse than the
model promoted now, scored on the same origins, and at no horizon does a model-free band have a
lower interval score than its band by more than chance (the per-horizon block test of
forecaster/calibrate.py; training already serves a model-free band at any horizon where it wins
beyond chance, so this only catches a bug). Bands are not compared with the promoted model's on that slice: the older
model was fitted on most of it and would look better than it is, which would keep stale models.
Promotion happens in one transaction with storing the weights, so a crash or kill at any moment
leaves the previous promoted model in place.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from db.candles import load_frame, newest_open_time
from db.model_runs import (load_weights, promote, promoted_run, prune_weights,
                           record_failed, record_trained, start_model_run)
from exchanges.base import Market
from jobs.errors import JobError
from jobs.recording import one_line, recorded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    market: Market
    model_run_id: int
    status: str
    metrics: dict
    reason: str

    def summary(self) -> str:
        m = self.metrics
        return (f"{self.market}: model run {self.model_run_id} {self.status} ({self.reason}); "
                f"val rMAE {m.get('val_rmae', float('nan')):.4f}, coverage {m.get('val_coverage', float('nan')):.3f}, "
                f"interval score {m.get('val_interval_score', float('nan')):.6g} vs best model-free "
                f"{m.get('val_free_interval_score', float('nan')):.6g}, band {m.get('band_source', '?')}; "
                f"{m.get('epochs')} epochs in {m.get('train_seconds', 0):.1f}s on {m.get('device')}")


def model_config(settings, **overrides):
    """The model's hyperparameters: defaults, then FORECASTER_MODEL_OVERRIDES, then `overrides`."""
    from forecaster.config import ModelConfig
    return ModelConfig.from_dict({"horizon": settings.horizon, **settings.model_override_dict(), **overrides})


def train_market(services, market: Market, *, train_hours: int, until: datetime | None = None,
                 stop=None, config=None, fit=None) -> TrainOutcome:
    """`fit` (default `forecaster.train.train`) is the seam where tests put a failing trainer."""
    from forecaster.device import resolve_device
    from forecaster.errors import NotEnoughHistory
    from forecaster.train import train

    fit = fit or train
    settings, sessions = services.settings, services.sessions
    config = config or model_config(settings)
    device = resolve_device(settings.device)
    with recorded(sessions, "train", market) as record:
        frame = _training_frame(sessions, market, max(train_hours, config.volatility_steps), until)
        with sessions() as s, s.begin():
            run_id = start_model_run(session=s, exchange=market.exchange, symbol=market.symbol, device=str(device),
                                     config=config.to_dict(),
                                     train_start=frame.index[max(0, len(frame) - train_hours)].to_pydatetime(),
                                     train_end=frame.index[-1].to_pydatetime())
        try:
            result = fit(frame, config, device, train_steps=train_hours, stop=stop,
                         progress=_progress_logger(market))
        except Exception as exc:  # NotEnoughHistory, TrainingCancelled, or a bug: recorded, re-raised
            with sessions() as s, s.begin():
                record_failed(session=s, run_id=run_id, error=one_line(exc))
            if isinstance(exc, NotEnoughHistory):
                raise JobError(f"{market}: {one_line(exc)}") from exc
            raise
        status, reason = _gate(services, market, result, frame)
        with sessions() as s, s.begin():
            record_trained(session=s, run_id=run_id, metrics=result.metrics, weights=result.weights,
                           status="trained" if status == "promoted" else status)
            if status == "promoted":
                promote(session=s, run_id=run_id, exchange=market.exchange, symbol=market.symbol)
            prune_weights(session=s, exchange=market.exchange, symbol=market.symbol, keep=settings.keep_models)
        record.rows = result.metrics.get("n_train")
        record.message = f"model run {run_id} {status}: {reason}"
        return TrainOutcome(market, run_id, status, result.metrics, reason)


def _training_frame(sessions, market: Market, hours: int, until: datetime | None):
    with sessions() as s:
        newest = newest_open_time(session=s, exchange=market.exchange, symbol=market.symbol)
        if newest is None:
            raise JobError(f"{market}: no candles stored yet: run `forecaster ingest` or `forecaster import-csv`")
        end = min(until, newest) if until else newest
        frame = load_frame(session=s, exchange=market.exchange, symbol=market.symbol,
                           since=end - timedelta(hours=hours), until=end)
    if frame.empty:
        raise JobError(f"{market}: no candles up to {end:%Y-%m-%dT%H:%M}Z")
    return frame


def _gate(services, market: Market, result, frame) -> tuple[str, str]:
    from forecaster.errors import OutdatedModel
    from forecaster.predict import Forecaster, evaluate

    m = result.metrics
    if not m.get("val_mae", float("inf")) <= m.get("val_naive_mae", 0.0):
        return "rejected", f"validation MAE {m.get('val_mae'):.6g} is worse than naive {m.get('val_naive_mae'):.6g}"
    if m.get("band_beaten_at"):
        return "rejected", f"a model-free band beats its band beyond chance at horizons {m['band_beaten_at']}"
    with services.sessions() as s:
        current = promoted_run(session=s, exchange=market.exchange, symbol=market.symbol)
        old_weights = load_weights(session=s, run_id=current.id) if current else None
    if old_weights is None:
        return "promoted", "first model of this market, at least as accurate as naive"
    try:
        old = Forecaster.load(old_weights)
    except OutdatedModel:
        return "promoted", f"replaces model run {current.id}, made by an older release"
    new = Forecaster.load(result.weights)
    if old.config.horizon != new.config.horizon:
        return "promoted", f"replaces model run {current.id}, whose horizon differs"
    origins = _validation_origins(frame, new.config)
    old_score, new_score = evaluate(old, frame, origins), evaluate(new, frame, origins)
    if new_score["mae"] > old_score["mae"]:
        return "rejected", (f"validation MAE {new_score['mae']:.6g} is worse than the promoted model "
                            f"{current.id}'s {old_score['mae']:.6g} on the same origins")
    return "promoted", (f"validation MAE {new_score['mae']:.6g} <= promoted model {current.id}'s "
                        f"{old_score['mae']:.6g}; band no worse than model-free at every horizon")


def _validation_origins(frame, config):
    index = frame.index
    return index[-config.val_steps:-config.horizon] if len(index) > config.val_steps else index[:-config.horizon]


def _progress_logger(market: Market):
    def report(epoch: int, n_epochs: int, train_loss: float, val_loss: float) -> None:
        log.info("train %s: epoch %d/%d train loss %.4f val loss %.4f", market, epoch, n_epochs, train_loss, val_loss)
    return report

