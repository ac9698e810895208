"""Typed SQLAlchemy models: the tables of ../shared/CONTRACT.md. Created by migrations only."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.types import UTCDateTime

from db.base import Base


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


class ForecastColumns:
    """A forecast row, in `predictions` and as superseded in `prediction_history`."""

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


class Prediction(ForecastColumns, Base):
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


class PredictionHistory(ForecastColumns, Base):
    """Forecasts that a later forecast for the same key superseded (migration 0005): the row as it
    was in `predictions`, and when it was replaced. Rows are only ever added."""

    __tablename__ = "prediction_history"
    __table_args__ = (
        Index("ix_prediction_history_key", "exchange", "symbol", "interval", "kind", "origin_time", "horizon"),
        Index("ix_prediction_history_backtest_run_id", "backtest_run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[int] = mapped_column(Integer)
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


# The service's own bookkeeping (job runs, backtest runs, job locks, daemon leases): db/run_models.py,
# on the same Base. Imported here so that every table is on Base.metadata and importable from here.
from db.run_models import BacktestHorizon, BacktestRun, BacktestScores, DaemonLease, JobLock, JobRun  # noqa: E402,F401
