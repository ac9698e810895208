"""Typed SQLAlchemy models: the tables of ../shared/CONTRACT.md. Created by migrations only."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.types import UTCDateTime

# A naming convention makes constraint names stable across databases, which Alembic needs to
# alter or drop them later (batch mode on SQLite recreates tables by name).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Candle(Base):
    __tablename__ = "candles"

    exchange: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    interval: Mapped[str] = mapped_column(String(8), primary_key=True)
    open_time: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    open: Mapped[float] = mapped_column(Float(53))
    high: Mapped[float] = mapped_column(Float(53))
    low: Mapped[float] = mapped_column(Float(53))
    close: Mapped[float] = mapped_column(Float(53))
    volume: Mapped[float] = mapped_column(Float(53))
    source: Mapped[str] = mapped_column(String(8))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (
        # migration 0007: the whole market key
        Index("ix_job_runs_market_job_started", "exchange", "symbol", "interval", "job", "started_at"),
        Index("ix_job_runs_started", "started_at"),  # migration 0003: the last runs, failures since
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(16))
    exchange: Mapped[str | None] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(String(32))
    interval: Mapped[str | None] = mapped_column(String(8))  # migration 0007; NULL for runs of no market
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)


class ModelRun(Base):
    __tablename__ = "model_runs"
    __table_args__ = (Index("ix_model_runs_market_status", "exchange", "symbol", "interval", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    interval: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    train_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    train_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    n_train: Mapped[int | None] = mapped_column(Integer)
    n_val: Mapped[int | None] = mapped_column(Integer)
    device: Mapped[str | None] = mapped_column(String(32))
    epochs: Mapped[int | None] = mapped_column(Integer)
    train_seconds: Mapped[float | None] = mapped_column(Float(53))
    val_mae: Mapped[float | None] = mapped_column(Float(53))
    val_naive_mae: Mapped[float | None] = mapped_column(Float(53))
    val_rmae: Mapped[float | None] = mapped_column(Float(53))
    val_coverage: Mapped[float | None] = mapped_column(Float(53))
    # migration 0004: the band served per horizon and its validation interval score vs model-free
    band_source: Mapped[str | None] = mapped_column(Text)
    val_interval_score: Mapped[float | None] = mapped_column(Float(53))
    val_free_interval_score: Mapped[float | None] = mapped_column(Float(53))
    config: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class ModelWeights(Base):
    """The safetensors bytes of a model run, apart from `model_runs` so that BI queries on
    `model_runs` never drag blobs along. Pruned to the promoted model plus a few recent ones."""

    __tablename__ = "model_weights"

    model_run_id: Mapped[int] = mapped_column(ForeignKey("model_runs.id", ondelete="CASCADE"), primary_key=True)
    format: Mapped[str] = mapped_column(String(16))
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BacktestRun(Base):
    """One `forecaster backtest`: its settings, when and by which code it ran, and its summary over
    all horizons (migration 0005). Its forecasts are the `predictions` (and `prediction_history`)
    rows whose `backtest_run_id` is its id; its per-horizon table is `backtest_horizons`."""

    __tablename__ = "backtest_runs"
    __table_args__ = (Index("ix_backtest_runs_market_started", "exchange", "symbol", "interval", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    interval: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # settings and code of the run; NULL on the run standing for backtest rows older than 0005
    days: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(Integer)
    retrain_every: Mapped[int | None] = mapped_column(Integer)
    train_hours: Mapped[int | None] = mapped_column(Integer)
    horizon: Mapped[int | None] = mapped_column(Integer)
    config: Mapped[str | None] = mapped_column(Text)
    code_version: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(32))
    first_origin: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_origin: Mapped[datetime | None] = mapped_column(UTCDateTime)
    n_origins: Mapped[int | None] = mapped_column(Integer)
    n_fits: Mapped[int | None] = mapped_column(Integer)
    fit_seconds: Mapped[float | None] = mapped_column(Float(53))
    n: Mapped[int | None] = mapped_column(Integer)
    mae: Mapped[float | None] = mapped_column(Float(53))
    naive_mae: Mapped[float | None] = mapped_column(Float(53))
    rmae: Mapped[float | None] = mapped_column(Float(53))
    coverage: Mapped[float | None] = mapped_column(Float(53))
    interval_score: Mapped[float | None] = mapped_column(Float(53))
    empirical_interval_score: Mapped[float | None] = mapped_column(Float(53))
    empirical_coverage: Mapped[float | None] = mapped_column(Float(53))
    ewma_interval_score: Mapped[float | None] = mapped_column(Float(53))
    ewma_coverage: Mapped[float | None] = mapped_column(Float(53))
    fhs_interval_score: Mapped[float | None] = mapped_column(Float(53))
    fhs_coverage: Mapped[float | None] = mapped_column(Float(53))
    garch_interval_score: Mapped[float | None] = mapped_column(Float(53))  # migration 0008
    garch_coverage: Mapped[float | None] = mapped_column(Float(53))
    best_free_interval_score: Mapped[float | None] = mapped_column(Float(53))
    ratio_vs_empirical: Mapped[float | None] = mapped_column(Float(53))
    ratio_low: Mapped[float | None] = mapped_column(Float(53))
    ratio_high: Mapped[float | None] = mapped_column(Float(53))
    ratio_days: Mapped[int | None] = mapped_column(Integer)
    band_sources: Mapped[str | None] = mapped_column(Text)


class BacktestHorizon(Base):
    """The per-horizon table a backtest printed, one row per horizon (migration 0005)."""

    __tablename__ = "backtest_horizons"

    backtest_run_id: Mapped[int] = mapped_column(ForeignKey("backtest_runs.id", ondelete="CASCADE"),
                                                 primary_key=True)
    horizon: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    mae: Mapped[float | None] = mapped_column(Float(53))
    naive_mae: Mapped[float | None] = mapped_column(Float(53))
    rmae: Mapped[float | None] = mapped_column(Float(53))
    coverage: Mapped[float | None] = mapped_column(Float(53))
    interval_score: Mapped[float | None] = mapped_column(Float(53))
    empirical_interval_score: Mapped[float | None] = mapped_column(Float(53))
    empirical_coverage: Mapped[float | None] = mapped_column(Float(53))
    ewma_interval_score: Mapped[float | None] = mapped_column(Float(53))
    ewma_coverage: Mapped[float | None] = mapped_column(Float(53))
    fhs_interval_score: Mapped[float | None] = mapped_column(Float(53))
    fhs_coverage: Mapped[float | None] = mapped_column(Float(53))
    garch_interval_score: Mapped[float | None] = mapped_column(Float(53))  # migration 0008
    garch_coverage: Mapped[float | None] = mapped_column(Float(53))
    best_free_interval_score: Mapped[float | None] = mapped_column(Float(53))


class Prediction(Base):
    """The current forecast per key; what it replaced is in `prediction_history`."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("exchange", "symbol", "interval", "kind", "origin_time", "horizon",
                         name="uq_predictions_key"),
        Index("ix_predictions_target", "exchange", "symbol", "interval", "target_time"),
        # migration 0003: time windows of one kind (forecast_accuracy by market, kind, target_time)
        Index("ix_predictions_market_kind_target", "exchange", "symbol", "interval", "kind", "target_time"),
        Index("ix_predictions_backtest_run_id", "backtest_run_id"),  # migration 0005
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_run_id: Mapped[int | None] = mapped_column(ForeignKey("model_runs.id", ondelete="SET NULL"))
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    interval: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))
    origin_time: Mapped[datetime] = mapped_column(UTCDateTime)
    target_time: Mapped[datetime] = mapped_column(UTCDateTime)
    horizon: Mapped[int] = mapped_column(Integer)
    yhat: Mapped[float] = mapped_column(Float(53))
    yhat_lower: Mapped[float] = mapped_column(Float(53))
    yhat_upper: Mapped[float] = mapped_column(Float(53))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # migration 0005: the backtest run that made a backtest row (NULL for live rows and older ones)
    backtest_run_id: Mapped[int | None] = mapped_column(ForeignKey("backtest_runs.id", ondelete="SET NULL"))


class PredictionHistory(Base):
    """Forecasts that a later forecast for the same key superseded (migration 0005): the row as it
    was in `predictions`, and when it was replaced. Rows are only ever added."""

    __tablename__ = "prediction_history"
    __table_args__ = (
        Index("ix_prediction_history_key", "exchange", "symbol", "interval", "kind", "origin_time", "horizon"),
        Index("ix_prediction_history_backtest_run_id", "backtest_run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[int] = mapped_column(Integer)
    model_run_id: Mapped[int | None] = mapped_column(ForeignKey("model_runs.id", ondelete="SET NULL"))
    backtest_run_id: Mapped[int | None] = mapped_column(ForeignKey("backtest_runs.id", ondelete="SET NULL"))
    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    interval: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))
    origin_time: Mapped[datetime] = mapped_column(UTCDateTime)
    target_time: Mapped[datetime] = mapped_column(UTCDateTime)
    horizon: Mapped[int] = mapped_column(Integer)
    yhat: Mapped[float] = mapped_column(Float(53))
    yhat_lower: Mapped[float] = mapped_column(Float(53))
    yhat_upper: Mapped[float] = mapped_column(Float(53))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    superseded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CandleGap(Base):
    """A run of hours missing from a market's stored candles that ingest asked the exchange for
    and did not get (exchange maintenance, usually). Once confirmed it is not asked for again; an
    unconfirmed one is asked again at the next ingest (jobs/gaps.py)."""

    __tablename__ = "candle_gaps"

    exchange: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    interval: Mapped[str] = mapped_column(String(8), primary_key=True)
    first_missing: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    last_missing: Mapped[datetime] = mapped_column(UTCDateTime)
    hours: Mapped[int] = mapped_column(Integer)
    checks: Mapped[int] = mapped_column(Integer)  # how many times the exchange was asked and lacked them
    first_checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobLock(Base):
    """One row per job and market: the daemon that holds the row's lock (SELECT ... FOR UPDATE, in a
    transaction on a connection of its own) runs that job for that market. Locking a row needs the
    UPDATE privilege, which the read-only BI role does not have (daemon/pg_locks.py). `done_for` is the
    schedule slot (fire time) whose run of this job finished, set in the same transaction that
    releases the lock: the work of a slot is done once, by whichever daemon got to it."""

    __tablename__ = "job_locks"

    job: Mapped[str] = mapped_column(String(16), primary_key=True)
    exchange: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    interval: Mapped[str] = mapped_column(String(8), primary_key=True)
    done_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[str | None] = mapped_column(String(128))


class DaemonLease(Base):
    """A daemon's lease on the job locks it holds (Postgres): renewed every third of the lease while
    it runs; once `expires_at` has passed, another daemon ends the lock connections of `owner` (their
    application_name begins with it) so that its claims pass on (daemon/leases.py)."""

    __tablename__ = "daemon_leases"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
