"""Row locks on `job_locks` for daemons sharing one Postgres (daemon/locks.py says why rows, not
advisory locks). Each lock is a transaction on a connection of its own, from the lock engine the
composition root builds (`Services.lock_engine`: no pool, TCP keepalives), for as long as the job
runs."""
from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from daemon.leases import LeaseKeeper
from daemon.locks import HeldLock
from db.job_locks import (claim_due_row, ensure_lock_rows, is_locked, mark_done, read_done_for,
                          try_lock_row)
from core.market import Market
from jobs.recording import describe_error

log = logging.getLogger(__name__)
# The server's side of the keepalives (the client's: db/engine.py make_lock_engine), so that the
# lock of a daemon whose machine vanished is released within a minute; and no idle-in-transaction
# timeout: a training holds its lock for minutes.
SESSION_SETTINGS = {"tcp_keepalives_idle": "20", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3",
                    "idle_in_transaction_session_timeout": "0"}


class PgJobLocks:
    """Row locks on `job_locks`, each in a transaction on a dedicated connection, under a lease
    renewed while the daemon runs (daemon/leases.py)."""

    def __init__(self, engine: Engine, lease_seconds: float = 60.0) -> None:
        """`engine`: the lock engine (db/engine.py make_lock_engine), owned by the caller."""
        self._engine = engine
        self._rows: set[tuple[str, str]] = set()  # rows known to exist
        self._rows_guard = threading.Lock()
        self.owner = f"forecaster {socket.gethostname()} pid {os.getpid()}"
        self.lease = LeaseKeeper(self._engine, self.owner, lease_seconds)

    def prepare(self, jobs, markets) -> None:
        """Create the lock rows of these jobs and markets (at start: one statement, not one per run),
        and take the lease under which this daemon's locks are held."""
        self._ensure_rows([(job, str(m), m) for job in jobs for m in markets])
        self.lease.start()

    @contextmanager
    def hold(self, job: str, market: Market, *, wait: float = 0.0) -> Iterator[HeldLock]:
        """Yields a HeldLock, true with the lock held, false if another worker holds it (after
        waiting up to `wait` s). Raises SQLAlchemyError if the database cannot be reached."""
        self._ensure_rows([(job, str(market), market)])
        with self._connection(f"{job} {market}") as conn:
            result = self._lock(conn, job, market, wait)
            if not is_locked(result):
                yield HeldLock(job, market, False)
            else:
                yield self._held(conn, job, market, result)

    @contextmanager
    def claim(self, job: str, markets: list[Market], slot: datetime) -> Iterator[HeldLock | None]:
        """Lock the first of `markets` (in order) whose run for `slot` is not done and that no other
        worker holds (SKIP LOCKED); None when there is none left."""
        self._ensure_rows([(job, str(m), m) for m in markets])
        with self._connection(f"{job} (claiming)") as conn:
            market = claim_due_row(conn, job=job, markets=markets, slot=slot)
            if market is None:
                yield None
                return
            self._name(conn, f"{job} {market}")
            yield self._held(conn, job, market, None)

    def done_for(self, job: str, markets: list[Market]) -> dict[Market, datetime | None]:
        """The slot each market's run of `job` was last done for (None: not known)."""
        with self._engine.connect() as conn:
            done = read_done_for(conn, job=job)
        return {m: done.get(m) for m in markets}

    def _held(self, conn, job: str, market: Market, done_for) -> HeldLock:
        def done(slot: datetime) -> None:
            mark_done(conn, job=job, market=market, slot=slot, by=self.owner)
            conn.commit()  # the record and the release, at once
        return HeldLock(job, market, True, check=lambda: _connection_problem(conn), done_for=done_for,
                        mark_done=done)

    @contextmanager
    def _connection(self, what: str):
        conn = self._engine.connect()
        try:
            conn.execute(text("SELECT set_config(name, value, false) FROM (VALUES " + ", ".join(
                f"('{k}', '{v}')" for k, v in SESSION_SETTINGS.items()) + ") AS s(name, value)"))
            self._name(conn, what)
            conn.commit()
            yield conn
        finally:
            try:
                conn.rollback()  # ends the transaction: releases the row
            except Exception as exc:  # the connection died: the server released the row with it
                log.debug("unlock %s: %s", what, exc)
            finally:
                conn.close()

    def _name(self, conn, what: str) -> None:
        # Shown in pg_stat_activity: which daemon holds which lock. Session-wide, so it outlives the
        # transaction it is set in only once committed: set it before locking, or read it as a hint.
        conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": f"{self.owner} {what}"[:63]})

    def _lock(self, conn, job: str, market: Market, wait: float):
        if wait <= 0:
            return try_lock_row(conn, job=job, market=market, wait=False)
        conn.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": f"{int(wait * 1000)}ms"})
        try:
            return try_lock_row(conn, job=job, market=market, wait=True)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available: waited in vain
                raise
            conn.rollback()
            return try_lock_row(conn, job=job, market=market, wait=False)

    def _ensure_rows(self, wanted: list[tuple[str, str, Market]]) -> None:
        with self._rows_guard:
            missing = [(job, m) for job, name, m in wanted if (job, name) not in self._rows]
        if not missing:
            return
        with self._engine.begin() as conn:
            ensure_lock_rows(conn, missing)
        with self._rows_guard:
            self._rows.update((job, str(m)) for job, m in missing)

    def close(self) -> None:
        self.lease.close()


def _connection_problem(conn) -> str | None:
    """None while the lock's connection (and so its transaction and row lock) is alive."""
    try:
        conn.execute(text("SELECT 1"))
        return None
    except DBAPIError as exc:
        return f"its database connection ended: {describe_error(exc)}"
