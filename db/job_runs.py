"""Queries on `job_runs`: one row per job execution, written in its own short transactions so that
a job whose work rolls back is still recorded as failed."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.market import Market
from core.names import JobStatus
from db.market_key import market_columns, market_filter
from db.models import JobRun


def _now() -> datetime:
    return datetime.now(timezone.utc)


def start_job_run(*, session: Session, job: str, market: Market | None) -> int:
    """A `running` row of `job` for `market` (None: a run of no market)."""
    run = JobRun(job=job, **(market_columns(market) if market else {}), started_at=_now(), status=JobStatus.RUNNING)
    session.add(run)
    session.flush()
    return run.id


def finish_job_run(*, session: Session, run_id: int, status: str, rows: int | None = None,
                   message: str | None = None) -> bool:
    """Record how a run ended, if it is still `running`: False if another worker marked it
    abandoned meanwhile (it found the run's lock free), whose verdict then stands."""
    if status not in set(JobStatus):
        raise ValueError(f"unknown job status {status!r}")
    return session.execute(
        update(JobRun).where(JobRun.id == run_id, JobRun.status == JobStatus.RUNNING)
        .values(status=status, rows=rows, message=message, finished_at=_now())
    ).rowcount == 1


def fail_stale_running(*, session: Session, message: str = "abandoned: the process running it stopped",
                       job: str | None = None, market: Market | None = None) -> int:
    """Mark `running` rows failed (all, or those of one job and/or market); called at daemon start
    for the jobs no other process can be running."""
    stmt = update(JobRun).where(JobRun.status == JobStatus.RUNNING)
    if job is not None:
        stmt = stmt.where(JobRun.job == job)
    if market is not None:
        stmt = stmt.where(*market_filter(JobRun, market))
    result = session.execute(stmt.values(status=JobStatus.FAILED, message=message, finished_at=_now()))
    return result.rowcount or 0


def last_run(*, session: Session, job: str, market: Market,
             status: str | None = None) -> JobRun | None:
    """The newest run of one job for one market (optionally: with this status)."""
    stmt = select(JobRun).where(JobRun.job == job, *market_filter(JobRun, market))
    if status is not None:
        stmt = stmt.where(JobRun.status == status)
    return session.scalars(stmt.order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1)).first()


def failures_in_a_row(*, session: Session, job: str, market: Market,
                      limit: int) -> tuple[int, str | None]:
    """How many of the newest finished runs (ok or failed; skipped ones aside) of one job and market
    failed in a row, counting up to `limit`, and the newest failure's message."""
    stmt = (select(JobRun.status, JobRun.message)
            .where(JobRun.job == job, *market_filter(JobRun, market), JobRun.status.in_((JobStatus.OK, JobStatus.FAILED)))
            .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit))
    rows = session.execute(stmt).all()
    failed = 0
    for status, _ in rows:
        if status != JobStatus.FAILED:
            break
        failed += 1
    return failed, rows[0].message if failed else None
