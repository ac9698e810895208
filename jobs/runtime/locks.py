"""Who may run what: one worker per job and market at a time, across threads and processes, and a
worker that notices when it no longer holds its lock.

- Postgres: a row of `job_locks` per job and market, locked with `SELECT ... FOR UPDATE SKIP
  LOCKED` in a transaction on a connection of its own, for as long as the job runs. Several
  daemons may share one Postgres; the one that gets the row runs the job, the others skip it. Row
  locks replace the advisory locks used before: anyone who can connect can take an advisory lock
  on the daemon's computable keys (the read-only BI role could stop every ingest that way), while
  locking a row needs the UPDATE privilege on `job_locks`, which only the service's own role has.
  The lock ends with its transaction: when the job commits, or when its connection dies (a killed
  process, a restarted or terminated backend). Then another daemon may take it, so a job asks its
  lock, between training epochs and before every write, whether it still holds it (`HeldLock`),
  and stops without writing if not. The database state that matters is fenced as well: status
  changes of a model run require the status it had (db/model_runs.py), so a run another worker
  marked abandoned can never become `promoted`.
- SQLite: one daemon per database file, enforced by an exclusive `flock` on `<file>.daemon.lock`
  (the kernel drops it when the process dies, even by kill -9); within the daemon, a thread lock
  per job and market, which nothing can take away.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from db.job_locks import (claim_due_row, ensure_lock_rows, is_locked, mark_done, read_done_for,
                          try_lock_row)
from exchanges.base import Market
from jobs.errors import JobError
from jobs.runtime.leases import LeaseKeeper
from jobs.recording import describe_error

log = logging.getLogger(__name__)
# libpq keepalives: a lock connection whose network path died is noticed within about a minute
# (and a check of the lock cannot hang for the kernel's default of hours).
CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 20, "keepalives_interval": 5, "keepalives_count": 3,
                     "tcp_user_timeout": 30_000}
# The same on the server's side, so that the lock of a daemon whose machine vanished is released
# within a minute; and no idle-in-transaction timeout: a training holds its lock for minutes.
SESSION_SETTINGS = {"tcp_keepalives_idle": "20", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3",
                    "idle_in_transaction_session_timeout": "0"}


class DaemonRefused(JobError):
    """Another daemon already serves this SQLite database."""


class LockLost(JobError):
    """This worker no longer holds the lock of the job it runs: it stops without writing."""


class HeldLock:
    """What `hold` and `claim` yield: true if the lock was taken. `lost()` says why it is gone
    (None while it is held); `ensure()` raises LockLost instead. `done_for` is the schedule slot
    whose run of this job and market finished last (None if unknown); `mark_done(slot)` records a
    finished run and releases the lock."""

    def __init__(self, job: str, market: Market, held: bool, check=None, done_for: datetime | None = None,
                 mark_done=None) -> None:
        self.job, self.market, self.held, self.done_for = job, market, held, done_for
        self._check = check  # returns None while held, else the reason
        self._mark_done = mark_done
        self._lost: str | None = None

    def __bool__(self) -> bool:
        return self.held

    def lost(self) -> str | None:
        if self._lost is None and self.held and self._check is not None:
            self._lost = self._check()
        return self._lost

    def ensure(self) -> None:
        reason = self.lost()
        if reason is not None:
            raise LockLost(f"lost the {self.job} lock of {self.market} ({reason}): "
                           "another worker may run it now, so this run stops without writing")

    def is_done(self, slot: datetime | None) -> bool:
        """Whether this job's run for `slot` finished already (here or in another daemon)."""
        return slot is not None and self.done_for is not None and self.done_for >= slot

    def mark_done(self, slot: datetime | None) -> None:
        if slot is not None and self.held and self._mark_done is not None:
            self._mark_done(slot)
            self.done_for = slot


class StopWhenLockLost:
    """Event-like for `forecaster.train.train(stop=...)`: set once the daemon stops or the lock is
    gone. Training checks it between epochs."""

    def __init__(self, stop: threading.Event, lock: HeldLock) -> None:
        self._stop, self._lock = stop, lock

    def is_set(self) -> bool:
        return self._stop.is_set() or self._lock.lost() is not None


class LocalJobLocks:
    """Thread locks: enough where a file lock already keeps other daemons out (SQLite). What was
    done for which schedule slot is remembered in memory: one daemon, one scheduler."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._done: dict[tuple[str, str], datetime] = {}

    def prepare(self, jobs, markets) -> None:
        pass

    def _lock_of(self, job: str, market: Market) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((job, str(market)), threading.Lock())

    def _held(self, job: str, market: Market) -> HeldLock:
        key = (job, str(market))

        def mark_done(slot: datetime) -> None:
            with self._guard:
                self._done[key] = slot
        with self._guard:
            done_for = self._done.get(key)
        return HeldLock(job, market, True, done_for=done_for, mark_done=mark_done)

    @contextmanager
    def hold(self, job: str, market: Market, *, wait: float = 0.0) -> Iterator[HeldLock]:
        lock = self._lock_of(job, market)
        got = lock.acquire(timeout=wait) if wait > 0 else lock.acquire(blocking=False)
        try:
            yield self._held(job, market) if got else HeldLock(job, market, False)
        finally:
            if got:
                lock.release()

    @contextmanager
    def claim(self, job: str, markets: list[Market], slot: datetime) -> Iterator[HeldLock | None]:
        """The first of `markets` (in order) whose run for `slot` is not done and not running."""
        for market in markets:
            lock = self._lock_of(job, market)
            with self._guard:
                done = self._done.get((job, str(market)))
            if (done is not None and done >= slot) or not lock.acquire(blocking=False):
                continue
            try:
                yield self._held(job, market)
            finally:
                lock.release()
            return
        yield None

    def done_for(self, job: str, markets: list[Market]) -> dict[Market, datetime | None]:
        """The slot each market's run of `job` was last done for (None: not known)."""
        with self._guard:
            return {m: self._done.get((job, str(m))) for m in markets}

    def close(self) -> None:
        pass


class PgJobLocks:
    """Row locks on `job_locks`, each in a transaction on a dedicated connection, under a lease
    renewed while the daemon runs (jobs/runtime/leases.py)."""

    def __init__(self, url: str, lease_seconds: float = 60.0) -> None:
        # NullPool: a connection is really closed after each job, never parked in a pool.
        self._engine = create_engine(url, poolclass=NullPool, connect_args=CLIENT_KEEPALIVES)
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
        self._engine.dispose()


def _connection_problem(conn) -> str | None:
    """None while the lock's connection (and so its transaction and row lock) is alive."""
    try:
        conn.execute(text("SELECT 1"))
        return None
    except DBAPIError as exc:
        return f"its database connection ended: {describe_error(exc)}"


def make_job_locks(url: str, lease_seconds: float = 60.0) -> LocalJobLocks | PgJobLocks:
    return PgJobLocks(url, lease_seconds) if make_url(url).get_backend_name() == "postgresql" else LocalJobLocks()


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases or in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


class ProcessLock:
    """Held for the daemon's lifetime on SQLite; a no-op on Postgres. The file stays after exit
    (removing it would race with a daemon starting); only the lock on it matters."""

    def __init__(self, url: str) -> None:
        self.database = sqlite_file(url)
        self.path = self.database.with_name(self.database.name + ".daemon.lock") if self.database else None
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        import fcntl
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DaemonRefused(f"another `forecaster run` (pid {holder}) already serves the SQLite database "
                                f"{self.database}: one daemon per SQLite file "
                                f"(lock {self.path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> ProcessLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
