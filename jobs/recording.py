"""Every job execution leaves one `job_runs` row and one log line with the figures that matter."""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.market import Market
from core.names import Job, JobStatus
from db.job_runs import fail_stale_running, finish_job_run, start_job_run
from db.model_runs import fail_stale_training
from db.redact import mask_secrets
from db.statistics import analyze_after_write

log = logging.getLogger("forecaster.jobs")  # jobs.logs.JOB_LOGGER
# An error line quotes the bad input (a CSV row, a setting's value); one of 100 KB would flood a
# terminal, a log and job_runs.message, so a line is cut here and says so.
MAX_LINE_CHARS = 300


@dataclass
class JobRecord:
    run_id: int
    status: str = JobStatus.OK
    rows: int | None = None
    message: str = ""


def one_line(exc: BaseException | str) -> str:
    """The first line of an error (or of a text), secrets masked, at most MAX_LINE_CHARS long (a
    driver's further lines are hints such as "Is the server running?")."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    return cut(mask_secrets(text.splitlines()[0]))


def cut(line: str, limit: int = MAX_LINE_CHARS) -> str:
    """`line` shortened to `limit` characters, saying how long it was."""
    return line if len(line) <= limit else f"{line[:limit]}... [cut: {len(line):,} characters in all]"


def describe_error(exc: BaseException) -> str:
    """One line for a log, a `job_runs.message` or the CLI; database errors say so and show the
    driver's own message rather than SQLAlchemy's wrapper (which repeats the SQL)."""
    from sqlalchemy.exc import SQLAlchemyError
    if isinstance(exc, SQLAlchemyError):
        return f"database: {one_line(exc.orig if getattr(exc, 'orig', None) is not None else exc)}"
    return one_line(exc)


@contextmanager
def recorded(sessions: sessionmaker[Session], job: str, market: Market | None):
    """Record a job run: `running` now, then ok/skipped/failed in a separate transaction, so a job
    whose own transaction rolled back is still recorded as failed."""
    with sessions() as s, s.begin():
        run_id = start_job_run(session=s, job=job, market=market)
    record = JobRecord(run_id)
    started = time.monotonic()
    try:
        yield record
    except BaseException as exc:
        message = describe_error(exc)
        seconds = time.monotonic() - started
        _finish(sessions, record.run_id, JobStatus.FAILED, record.rows, message)
        # A training cancelled because the daemon is stopping (SIGTERM) is a normal end: no ERROR.
        level = logging.INFO if _cancelled(exc) else logging.ERROR
        log.log(level, "job=%s market=%s status=failed seconds=%.2f error=%s", job, market or "-", seconds, message)
        raise
    seconds = time.monotonic() - started
    _finish(sessions, record.run_id, record.status, record.rows, record.message)
    # A bulk write (import, back-fill, backtest, predict --at) leaves the planner without statistics
    # on Postgres until autovacuum runs, if it runs: db/statistics.py.
    if record.status == JobStatus.OK:
        analyze_after_write(sessions, job, record.rows)
    log.info("job=%s market=%s status=%s rows=%s seconds=%.2f %s", job, market or "-", record.status,
             record.rows if record.rows is not None else "-", seconds, record.message)


def _cancelled(exc: BaseException) -> bool:
    from forecaster.errors import TrainingCancelled
    return isinstance(exc, TrainingCancelled)


def _finish(sessions, run_id, status, rows, message) -> None:
    try:
        with sessions() as s, s.begin():
            if not finish_job_run(session=s, run_id=run_id, status=status, rows=rows, message=mask_secrets(message)):
                log.warning("job run %s ended %s, but another worker had marked it abandoned already "
                            "(this worker had lost its lock); that record stands", run_id, status)
    except Exception as exc:  # the database itself may be what failed; the log line still tells
        log.warning("could not record job run %s as %s: %s", run_id, status, one_line(exc))


def fail_abandoned(sessions: sessionmaker[Session], job: str, market: Market, message: str) -> tuple[int, int]:
    """Mark the `running` runs of `job` for `market` failed with `message` (for train, its `training`
    model runs too): what a dead process, or a run that lost the database before it could record
    its end, left behind. Only for a caller holding the job's lock, so nothing of it can be running.
    Returns (job runs, model runs) marked."""
    with sessions() as s, s.begin():
        runs = fail_stale_running(session=s, job=job, message=message, market=market)
        models = fail_stale_training(session=s, market=market) if job == Job.TRAIN else 0
    return runs, models
