"""Who may run what: one worker per job and market at a time, across threads and processes, and a
worker that notices when it no longer holds its lock.

- Postgres (daemon/pg_locks.py): a row of `job_locks` per job and market, locked with `SELECT ... FOR UPDATE SKIP
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
  (daemon/process_lock.py); within the daemon, a thread lock per job and market, which nothing can
  take away.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from core.market import Market
from jobs.errors import JobError


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


def make_job_locks(services) -> LocalJobLocks:
    """Row locks on Postgres (on the composition root's lock engine), thread locks on SQLite."""
    if services.engine.url.get_backend_name() != "postgresql":
        return LocalJobLocks()
    from daemon.pg_locks import PgJobLocks
    return PgJobLocks(services.lock_engine(), services.settings.lock_lease_seconds)
