"""The words stored in the database for jobs, statuses, forecast kinds and band sources, each said
once. They are `StrEnum`s: each member is the stored string (`Job.TRAIN == "train"`, and `str()`,
f-strings and log lines print the bare value), so nothing in the database changes."""
from __future__ import annotations

from enum import StrEnum


class Job(StrEnum):
    """job_runs.job and job_locks.job."""

    INGEST = "ingest"
    IMPORT = "import"
    TRAIN = "train"
    PREDICT = "predict"
    BACKTEST = "backtest"
    RETENTION = "retention"  # leaves no job_runs row; names the tables it shrinks (db/statistics.py)


# The jobs status and the pages report per market, and those the daemon runs on a schedule.
JOBS = (Job.INGEST, Job.IMPORT, Job.TRAIN, Job.PREDICT, Job.BACKTEST)
DAEMON_JOBS = (Job.INGEST, Job.TRAIN, Job.PREDICT)


class JobStatus(StrEnum):
    """job_runs.status."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class ModelStatus(StrEnum):
    """model_runs.status: training, then failed, rejected, trained (passed the gate, not served) or
    promoted (served); a promoted model becomes retired when another replaces it."""

    TRAINING = "training"
    FAILED = "failed"
    REJECTED = "rejected"
    TRAINED = "trained"
    PROMOTED = "promoted"
    RETIRED = "retired"


# Runs that passed the gate: the promoted one, those it replaced, and trainings on a past window
# that were not promoted (`train --until` without `--promote`).
PASSED_GATE = (ModelStatus.PROMOTED, ModelStatus.RETIRED, ModelStatus.TRAINED)


class ForecastKind(StrEnum):
    """predictions.kind: the daemon's forecasts, or a walk-forward backtest's."""

    LIVE = "live"
    BACKTEST = "backtest"


class BandSource(StrEnum):
    """model_runs.band_source: where a horizon's band comes from (forecaster/sources.py)."""

    VOLATILITY = "volatility"
    GARCH = "garch"
    EMPIRICAL = "empirical"
    EWMA = "ewma"
    FHS = "fhs"
    LSTM = "lstm"


# The model-free bands every model is held against, as backtest_runs columns are named.
YARDSTICKS = (BandSource.EMPIRICAL, BandSource.EWMA, BandSource.FHS, BandSource.GARCH)
