"""Who may run what: one worker per job and market at a time, across threads and processes.

- Postgres: a session-level advisory lock (`pg_try_advisory_lock`) per job and market, held on a
  connection of its own for as long as the job runs. Several daemons may share one Postgres; the
  one that gets the lock runs the job, the others skip it. Locks are scoped to the database, and a
  killed process's locks vanish with its connection.
- SQLite: one daemon per database file, enforced by an exclusive `flock` on `<file>.daemon.lock`
  (the kernel drops it when the process dies, even by kill -9); within the daemon, a thread lock
  per job and market.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from exchanges.base import Market
from jobs.errors import JobError

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2


class DaemonRefused(JobError):
    """Another daemon already serves this SQLite database."""


def lock_key(job: str, market: Market | str) -> int:
    """A stable signed 64-bit key for `pg_advisory_lock`, the same in every process."""
    digest = hashlib.blake2b(f"forecaster:{job}:{market}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class LocalJobLocks:
    """Thread locks: enough where a file lock already keeps other daemons out (SQLite)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}

    @contextmanager
    def hold(self, job: str, market: Market, *, wait: float = 0.0) -> Iterator[bool]:
        with self._guard:
            lock = self._locks.setdefault((job, str(market)), threading.Lock())
        got = lock.acquire(timeout=wait) if wait > 0 else lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()

    def close(self) -> None:
        pass


class PgJobLocks:
    """Advisory locks, each on a dedicated connection: closing the connection always releases it."""

    def __init__(self, url: str) -> None:
        # NullPool: a connection is really closed after each job, never parked in a pool still locked.
        self._engine = create_engine(url, poolclass=NullPool)

    @contextmanager
    def hold(self, job: str, market: Market, *, wait: float = 0.0) -> Iterator[bool]:
        """Yields True with the lock held, or False if another worker holds it (after `wait` s).
        Raises SQLAlchemyError if the database cannot be reached."""
        key = lock_key(job, market)
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            deadline = time.monotonic() + wait
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            while not got and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
                got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            yield got
        finally:
            try:
                if not conn.closed and not conn.invalidated:
                    conn.scalar(text("SELECT pg_advisory_unlock_all()"))
            except Exception as exc:  # the connection died: the server dropped the lock with it
                log.debug("unlock %s %s: %s", job, market, exc)
            finally:
                conn.close()

    def close(self) -> None:
        self._engine.dispose()


def make_job_locks(url: str) -> LocalJobLocks | PgJobLocks:
    return PgJobLocks(url) if make_url(url).get_backend_name() == "postgresql" else LocalJobLocks()


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
