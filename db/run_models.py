"""The service's bookkeeping tables: job runs, backtest runs and their per-horizon figures, job locks
and daemon leases. On the same Base as db/models.py, which imports this module, so that `from db.models import
JobRun` works as for every table. Created by migrations only."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.types import UTCDateTime


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


class BacktestScores:
    """The figures a backtest prints, over all horizons (backtest_runs) or per horizon
    (backtest_horizons): the served band next to naive and every yardstick (db/backtest_runs.FIGURES)."""

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


class BacktestRun(BacktestScores, Base):
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
    ratio_vs_empirical: Mapped[float | None] = mapped_column(Float(53))
    ratio_low: Mapped[float | None] = mapped_column(Float(53))
    ratio_high: Mapped[float | None] = mapped_column(Float(53))
    ratio_days: Mapped[int | None] = mapped_column(Integer)
    band_sources: Mapped[str | None] = mapped_column(Text)


class BacktestHorizon(BacktestScores, Base):
    """The per-horizon table a backtest printed, one row per horizon (migration 0005)."""

    __tablename__ = "backtest_horizons"

    backtest_run_id: Mapped[int] = mapped_column(ForeignKey("backtest_runs.id", ondelete="CASCADE"),
                                                 primary_key=True)
    horizon: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


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
