"""Queries on `model_runs` and `model_weights`. Functions take the session as a keyword and never commit."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core.market import Market
from core.names import PASSED_GATE, ModelStatus
from db.market_key import market_columns, market_filter
from db.models import ModelRun, ModelWeights

if TYPE_CHECKING:
    from core.records import TrainingMetrics

WEIGHTS_FORMAT = "safetensors"
_METRIC_FIELDS = ("n_train", "n_val", "epochs", "train_seconds", "val_mae", "val_naive_mae", "val_rmae",
                  "val_coverage", "band_source", "val_interval_score", "val_free_interval_score")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def start_model_run(*, session: Session, market: Market, device: str, config: dict,
                    train_start: datetime | None, train_end: datetime | None) -> int:
    run = ModelRun(**market_columns(market), status=ModelStatus.TRAINING, started_at=_now(),
                   device=device, config=json.dumps(config, sort_keys=True), train_start=train_start,
                   train_end=train_end)
    session.add(run)
    session.flush()
    return run.id


def record_trained(*, session: Session, run_id: int, metrics: TrainingMetrics, weights: bytes, status: str,
                   config: dict | None = None) -> bool:
    """Store the outcome of a finished training: metrics, weights and `promoted`/`rejected`/`trained`.

    Only a run still `training` is updated: False (and nothing written) if another worker marked
    it failed meanwhile (it found the run's lock free, so this worker had lost it)."""
    values = {k: getattr(metrics, k) for k in _METRIC_FIELDS}
    values.update(status=status, finished_at=_now(), device=metrics.device)
    if config is not None:
        values["config"] = json.dumps(config, sort_keys=True)
    updated = session.execute(update(ModelRun).where(ModelRun.id == run_id, ModelRun.status == ModelStatus.TRAINING)
                              .values(**values)).rowcount
    if updated != 1:
        return False
    session.add(ModelWeights(model_run_id=run_id, format=WEIGHTS_FORMAT, weights=weights, created_at=_now()))
    return True


def record_failed(*, session: Session, run_id: int, error: str) -> bool:
    """Mark a run failed, if it is still `training` (another worker may have marked it already)."""
    return session.execute(update(ModelRun).where(ModelRun.id == run_id, ModelRun.status == ModelStatus.TRAINING)
                           .values(status=ModelStatus.FAILED, finished_at=_now(), error=error[:2000])).rowcount == 1


def promote(*, session: Session, run_id: int, market: Market) -> bool:
    """Make `run_id` (status `trained`) the promoted model of its market; the one before it becomes
    `retired`. Both changes are in the caller's transaction, so a crash leaves exactly one promoted
    model. False, and the caller must roll back, if the run is not `trained`."""
    session.execute(update(ModelRun)
                    .where(*market_filter(ModelRun, market),
                           ModelRun.status == ModelStatus.PROMOTED, ModelRun.id != run_id)
                    .values(status=ModelStatus.RETIRED))
    return session.execute(update(ModelRun).where(ModelRun.id == run_id, ModelRun.status == ModelStatus.TRAINED)
                           .values(status=ModelStatus.PROMOTED)).rowcount == 1


def retire_outdated(*, session: Session, run_id: int) -> bool:
    """A promoted model this release cannot load (an older format) stops being promoted, so the
    market counts as having no model and is trained again. True if the row changed."""
    result = session.execute(update(ModelRun).where(ModelRun.id == run_id, ModelRun.status == ModelStatus.PROMOTED)
                             .values(status=ModelStatus.RETIRED, error="outdated: made by an older release; retrained"))
    return bool(result.rowcount)


def promoted_run(*, session: Session, market: Market) -> ModelRun | None:
    return session.scalars(select(ModelRun).where(*market_filter(ModelRun, market), ModelRun.status == ModelStatus.PROMOTED)
                           .order_by(ModelRun.id.desc()).limit(1)).first()


def models_trained_until(*, session: Session, market: Market, until: datetime) -> list[tuple[int, datetime]]:
    """(id, train_end) of every model run that passed the gate, still has its weights, and was
    trained on candles up to `until` at the latest; oldest training window first."""
    rows = session.execute(
        select(ModelRun.id, ModelRun.train_end)
        .join(ModelWeights, ModelWeights.model_run_id == ModelRun.id)
        .where(*market_filter(ModelRun, market),
               ModelRun.status.in_(PASSED_GATE), ModelRun.error.is_(None),
               ModelRun.train_end.is_not(None), ModelRun.train_end <= until)
        .order_by(ModelRun.train_end, ModelRun.id)).all()
    return [(r.id, r.train_end) for r in rows]


def load_weights(*, session: Session, run_id: int) -> bytes | None:
    return session.scalar(select(ModelWeights.weights).where(ModelWeights.model_run_id == run_id))


def prune_weights(*, session: Session, market: Market, keep: int) -> int:
    """Drop weights of all but the promoted model and the `keep` newest runs of a market."""
    runs = session.execute(select(ModelRun.id, ModelRun.status)
                           .join(ModelWeights, ModelWeights.model_run_id == ModelRun.id)
                           .where(*market_filter(ModelRun, market))
                           .order_by(ModelRun.id.desc())).all()
    drop = [r.id for i, r in enumerate(runs) if i >= keep and r.status != ModelStatus.PROMOTED]
    if drop:
        session.execute(delete(ModelWeights).where(ModelWeights.model_run_id.in_(drop)))
    return len(drop)


def fail_stale_training(*, session: Session, market: Market | None = None) -> int:
    """Runs left `training` by a killed process (of all markets, or of `market`) become `failed`;
    the promoted model is untouched."""
    stmt = update(ModelRun).where(ModelRun.status == ModelStatus.TRAINING)
    if market is not None:
        stmt = stmt.where(*market_filter(ModelRun, market))
    result = session.execute(stmt.values(status=ModelStatus.FAILED, finished_at=_now(),
                                         error="abandoned: the process training it stopped"))
    return result.rowcount or 0
