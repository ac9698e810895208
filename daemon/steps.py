"""One step of a scheduled job (ingest, train, predict) for one market, under the lock of its job
and market (daemon/locks.py):
- with the lock, `running` rows of that job and market (and `training` model runs, for train) can
  only be left over from a dead process or from a run that lost the database before it could
  record its end, so they are marked failed first (jobs/recording.py); then the job runs and
  records its own row;
- without it (another worker runs it), the run is skipped: logged in one line and counted
  (forecaster_job_runs_total{status="skipped"}), but no `job_runs` row is written.
A fault is one log line (the job's own, or ours when the database could not even take its row) and
a `failed` row where the database can be written; the caller gets FAILED. The next run retries.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager, nullcontext

from daemon.clock import SYSTEM_CLOCK
from core.names import DAEMON_JOBS
from core.market import Market
from jobs.recording import describe_error, fail_abandoned

log = logging.getLogger("forecaster.daemon")
OK, FAILED, SKIPPED, STOPPED = "ok", "failed", "skipped", "stopped"
NOTHING = object()  # what a step returns when it found nothing to do: no run, no metrics


class FailureLogged(logging.Filter):
    """Notes, per thread, that `jobs.recording` logged a job failure, so it is not logged twice.
    Attach it to the `forecaster.jobs` logger while the daemon runs."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            self._local.seen = True
        return True

    def reset(self) -> None:
        self._local.seen = False

    @property
    def seen(self) -> bool:
        return getattr(self._local, "seen", False)


def _cancelled(exc: BaseException) -> bool:
    from forecaster.errors import TrainingCancelled
    return isinstance(exc, TrainingCancelled)


class Steps:
    """Runs steps, and knows which run now (for the shutdown to wait on)."""

    def __init__(self, services, locks, metrics, stop: threading.Event, clock=SYSTEM_CLOCK) -> None:
        self.services, self.locks, self.metrics, self.stop, self.clock = services, locks, metrics, stop, clock
        self.failure_logged = FailureLogged()
        self._running: set[str] = set()
        self._cond = threading.Condition()

    # ---- what runs now
    @contextmanager
    def tracked(self, name: str):
        with self._cond:
            self._running.add(name)
        try:
            yield
        finally:
            with self._cond:
                self._running.discard(name)
                self._cond.notify_all()

    def wait_idle(self, deadline: float) -> list[str]:
        """Wait until nothing runs or the clock's monotonic() reaches `deadline`; what still runs."""
        with self._cond:
            while self._running and (remaining := deadline - self.clock.monotonic()) > 0:
                self._cond.wait(remaining)
            return sorted(self._running)

    # ---- one step
    def run(self, job: str, market: Market, fn, *, wait: float = 0.0, lock=None):
        """Run `fn(held_lock)` for one job and market under its lock (taken here, or `lock` if the
        caller holds it already): (status, fn's result, NOTHING if it found nothing to do, or None)."""
        if self.stop.is_set():
            return STOPPED, None
        self.failure_logged.reset()
        started = self.clock.monotonic()
        try:
            with (nullcontext(lock) if lock is not None else self.locks.hold(job, market, wait=wait)) as held:
                if not held:
                    self._record_skipped(job, market)
                    return SKIPPED, None
                self.fail_stale(job, market, "abandoned: still running when the next run of this job began "
                                             "(its process died or lost the database or its lock)")
                result = fn(held)
                if result is NOTHING:
                    return OK, NOTHING
        except Exception as exc:
            self.metrics.job_done(job, market, FAILED, self.clock.monotonic() - started)
            if self.stop.is_set() and _cancelled(exc):  # SIGTERM: the job's own line said so, at INFO
                pass
            elif not self.failure_logged.seen:  # e.g. the database was unreachable before a row existed
                log.error("job=%s market=%s status=failed error=%s", job, market, describe_error(exc))
            log.debug("job %s %s failed", job, market, exc_info=True)
            return FAILED, None
        self.metrics.job_done(job, market, OK, self.clock.monotonic() - started)
        return OK, result

    def _record_skipped(self, job: str, market: Market) -> None:
        """Counted and logged, not written to `job_runs`: with daemons sharing markets a skip is the
        normal outcome of most ticks, and a row for each buried the runs that did something."""
        self.metrics.job_done(job, market, SKIPPED, None)
        log.info("job=%s market=%s status=skipped: another worker holds this job's lock for this market", job, market)

    # ---- what dead processes left behind
    def sweep_stale(self, markets: list[Market]) -> None:
        """At start, for every job and market whose lock we can take (a daemon on the same Postgres
        holds the locks of what it runs), mark what is left `running` or `training` failed."""
        for m in markets:
            for job in DAEMON_JOBS:
                with self.locks.hold(job, m) as held:
                    if held:
                        self.fail_stale(job, m, "abandoned: the process running it stopped (found at daemon start)")

    def fail_stale(self, job: str, market: Market, message: str) -> None:
        """Called with the job's lock held, so nothing of this job and market can be running."""
        runs, models = fail_abandoned(self.services.sessions, job, market, message)
        if runs or models:
            log.warning("%s %s: marked %d stale running job run(s) and %d training model run(s) failed",
                        job, market, runs, models)
