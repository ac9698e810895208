"""Rows of `job_locks`, the daemon's per job and market locks (Postgres). The functions take a
connection, because a lock lives exactly as long as one transaction on one connection."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection, select, text, update
from sqlalchemy.dialects.postgresql import insert

from core.market import Market
from db.market_key import market_columns, market_filter, market_of
from db.models import JobLock

_NOT_LOCKED = object()


def ensure_lock_rows(connection: Connection, rows: list[tuple[str, Market]]) -> None:
    """Create the rows (job, market) that are missing. Call it in a transaction of its own
    and commit: a row inserted in the locking transaction would make every other worker's insert
    wait for that transaction to end."""
    if rows:
        connection.execute(insert(JobLock).values([{"job": job, **market_columns(market)} for job, market in rows])
                           .on_conflict_do_nothing())


def try_lock_row(connection: Connection, *, job: str, market: Market, wait: bool):
    """Lock the row in the connection's current transaction: its `done_for` (None or a datetime)
    if locked, or NOT_LOCKED if another transaction holds it (at once with wait=False; with
    wait=True after the transaction's lock_timeout, which raises and must be caught by the caller)."""
    stmt = (select(JobLock.done_for).where(JobLock.job == job, *market_filter(JobLock, market))
            .with_for_update(skip_locked=not wait))
    row = connection.execute(stmt).first()
    return _NOT_LOCKED if row is None else row.done_for


def is_locked(result) -> bool:
    return result is not _NOT_LOCKED


def claim_due_row(connection: Connection, *, job: str, markets: list[Market], slot: datetime) -> Market | None:
    """Lock the first row, in the order of `markets`, whose job is not done for `slot` and that no
    other transaction holds: its market, or None when no such row is left. SKIP LOCKED over the
    due work: daemons that claim at the same time get different rows. Rows are matched on the key's
    three columns (an index probe each), in the order given by each market's place in the list."""
    if not markets:
        return None
    wanted = ", ".join(f"(:exchange{i}, :symbol{i}, :interval{i}, {i})" for i in range(len(markets)))
    params = {f"{column}{i}": value for i, m in enumerate(markets) for column, value in market_columns(m).items()}
    row = connection.execute(text(
        "SELECT l.exchange, l.symbol, l.interval FROM job_locks l "
        f"JOIN (VALUES {wanted}) AS wanted (exchange, symbol, interval, place) "
        "ON l.exchange = wanted.exchange AND l.symbol = wanted.symbol AND l.interval = wanted.interval "
        "WHERE l.job = :job AND (l.done_for IS NULL OR l.done_for < :slot) "
        "ORDER BY wanted.place LIMIT 1 FOR UPDATE OF l SKIP LOCKED"),
        {"job": job, "slot": slot, **params}).first()
    return None if row is None else market_of(row)


def read_done_for(connection: Connection, *, job: str) -> dict[Market, datetime | None]:
    """The market of every row of `job` -> its `done_for` (a plain read: locks nobody's row)."""
    rows = connection.execute(select(JobLock.exchange, JobLock.symbol, JobLock.interval, JobLock.done_for)
                              .where(JobLock.job == job))
    return {market_of(r): r.done_for for r in rows}


def mark_done(connection: Connection, *, job: str, market: Market, slot: datetime, by: str) -> None:
    """Record, in the locking transaction, that the job's run for `slot` finished."""
    connection.execute(update(JobLock).where(JobLock.job == job, *market_filter(JobLock, market))
                       .values(done_for=slot, done_at=datetime.now(timezone.utc), done_by=by[:128]))
