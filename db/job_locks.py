"""Rows of `job_locks`, the daemon's per job and market locks (Postgres). The functions take a
connection, because a lock lives exactly as long as one transaction on one connection."""
from __future__ import annotations

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert

from db.candles import INTERVAL
from db.models import JobLock


def ensure_lock_row(connection: Connection, *, job: str, exchange: str, symbol: str) -> None:
    """Create the row if missing. Call it in a transaction of its own and commit: a row inserted in
    the locking transaction would make every other worker's insert wait for it to end."""
    connection.execute(insert(JobLock).values(job=job, exchange=exchange, symbol=symbol, interval=INTERVAL)
                       .on_conflict_do_nothing())


def try_lock_row(connection: Connection, *, job: str, exchange: str, symbol: str, wait: bool) -> bool:
    """Lock the row in the connection's current transaction: True if locked, False if another
    transaction holds it (at once with wait=False; with wait=True after the transaction's
    lock_timeout, which raises and must be caught by the caller)."""
    stmt = (select(JobLock.job).where(JobLock.job == job, JobLock.exchange == exchange,
                                      JobLock.symbol == symbol, JobLock.interval == INTERVAL)
            .with_for_update(skip_locked=not wait))
    return connection.execute(stmt).first() is not None
