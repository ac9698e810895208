"""Rows of `job_locks`, the daemon's per job and market locks (Postgres). The functions take a
connection, because a lock lives exactly as long as one transaction on one connection."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection, select, text, update
from sqlalchemy.dialects.postgresql import insert

from db.models import JobLock

_NOT_LOCKED = object()


def ensure_lock_rows(connection: Connection, rows: list[tuple[str, str, str, str]]) -> None:
    """Create the rows (job, exchange, symbol, interval) that are missing. Call it in a transaction of its own
    and commit: a row inserted in the locking transaction would make every other worker's insert
    wait for that transaction to end."""
    if rows:
        connection.execute(insert(JobLock).values([{"job": j, "exchange": e, "symbol": s, "interval": i}
                                                   for j, e, s, i in rows]).on_conflict_do_nothing())


def try_lock_row(connection: Connection, *, job: str, exchange: str, symbol: str, interval: str, wait: bool):
    """Lock the row in the connection's current transaction: its `done_for` (None or a datetime)
    if locked, or NOT_LOCKED if another transaction holds it (at once with wait=False; with
    wait=True after the transaction's lock_timeout, which raises and must be caught by the caller)."""
    stmt = (select(JobLock.done_for).where(JobLock.job == job, JobLock.exchange == exchange,
                                           JobLock.symbol == symbol, JobLock.interval == interval)
            .with_for_update(skip_locked=not wait))
    row = connection.execute(stmt).first()
    return _NOT_LOCKED if row is None else row.done_for


def is_locked(result) -> bool:
    return result is not _NOT_LOCKED


def claim_due_row(connection: Connection, *, job: str, markets: list[str], slot: datetime):
    """Lock the first row, in the order of `markets` (full keys "exchange:symbol@interval", see
    `lock_key`), whose job is not done for `slot` and that no other transaction holds:
    (exchange, symbol, interval), or None when no such row is left. SKIP LOCKED over the due
    work: daemons that claim at the same time get different rows."""
    row = connection.execute(text(
        "SELECT exchange, symbol, interval FROM job_locks "
        "WHERE job = :job AND exchange || ':' || symbol || '@' || interval = ANY(:markets) "
        "AND (done_for IS NULL OR done_for < :slot) "
        "ORDER BY array_position(CAST(:markets AS text[]), exchange || ':' || symbol || '@' || interval) "
        "LIMIT 1 FOR UPDATE SKIP LOCKED"),
        {"job": job, "markets": markets, "slot": slot}).first()
    return None if row is None else (row.exchange, row.symbol, row.interval)


def read_done_for(connection: Connection, *, job: str) -> dict[str, datetime | None]:
    """`lock_key` -> `done_for` of every row of `job` (a plain read: locks nobody's row)."""
    rows = connection.execute(select(JobLock.exchange, JobLock.symbol, JobLock.interval, JobLock.done_for)
                              .where(JobLock.job == job))
    return {lock_key(r.exchange, r.symbol, r.interval): r.done_for for r in rows}


def lock_key(exchange: str, symbol: str, interval: str) -> str:
    """The text `claim_due_row` matches a row by: the whole market key, interval included."""
    return f"{exchange}:{symbol}@{interval}"


def mark_done(connection: Connection, *, job: str, exchange: str, symbol: str, interval: str, slot: datetime, by: str) -> None:
    """Record, in the locking transaction, that the job's run for `slot` finished."""
    connection.execute(update(JobLock).where(JobLock.job == job, JobLock.exchange == exchange,
                                             JobLock.symbol == symbol, JobLock.interval == interval)
                       .values(done_for=slot, done_at=datetime.now(timezone.utc), done_by=by[:128]))
