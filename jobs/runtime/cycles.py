"""What the daemon's scheduled jobs do for one market: ingest then forecast, train then forecast.

Each step (ingest, train, predict) runs under the lock of its job and market (jobs/runtime/locks.py):
- with the lock, `running` rows of that job and market (and `training` model runs, for train) can
  only be left over from a dead process or from a run that lost the database before it could
  record its end, so they are marked failed first; then the job runs and records its own row;
- without it (another worker runs it), the run is skipped: logged in one line and counted
  (forecaster_job_runs_total{status="skipped"}), but no `job_runs` row is written.
A fault is one log line (the job's own, or ours when the database could not even take its row) and
a `failed` row where the database can be written; the cycle then raises CycleFailed, which the
scheduler's listener knows is logged already. The next run retries.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Callable

from db.job_runs import DAEMON_JOBS, fail_stale_running
from db.model_runs import fail_stale_training
from exchanges.base import Market
from jobs.runtime.health import DaemonState, Metrics, MarketState
from jobs.runtime.locks import StopWhenLockLost
from jobs.runtime.retry_note import retry_note
from jobs.recording import describe_error

log = logging.getLogger("forecaster.daemon")
PREDICT_LOCK_WAIT_SECONDS = 30.0  # a forecast another worker is writing is worth waiting for
OK, FAILED, SKIPPED, STOPPED = "ok", "failed", "skipped", "stopped"
NOTHING = object()  # what a step returns when it found nothing to do: no run, no metrics


class CycleFailed(Exception):
    """A step of a scheduled job failed; it was logged and recorded already."""


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


def needs_forecast(st: MarketState) -> bool:
    return (st.model is not None and st.newest_candle is not None
            and (st.newest_origin is None or st.newest_origin < st.newest_candle))


class MarketCycles:
    """The cycles, and which of them run now (for the shutdown to wait on)."""

    def __init__(self, services, locks, state: DaemonState, metrics: Metrics, stop: threading.Event,
                 wake_training: Callable[[Market], None]) -> None:
        self.services, self.settings = services, services.settings
        self.locks, self.state, self.metrics, self.stop = locks, state, metrics, stop
        self.wake_training = wake_training
        self.failure_logged = FailureLogged()
        self._running: set[str] = set()
        self._cond = threading.Condition()

    # ---- what runs now
    @contextmanager
    def _tracked(self, name: str):
        with self._cond:
            self._running.add(name)
        try:
            yield
        finally:
            with self._cond:
                self._running.discard(name)
                self._cond.notify_all()

    def wait_idle(self, deadline: float) -> list[str]:
        """Wait until nothing runs or time.monotonic() reaches `deadline`; what still runs."""
        with self._cond:
            while self._running and (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)
            return sorted(self._running)

    # ---- the cycles
    def run_logged(self, cycle, *args, **kwargs) -> None:
        """Run a cycle from a worker pool: its faults are logged and recorded already."""
        try:
            cycle(*args, **kwargs)
        except CycleFailed as exc:
            log.debug("%s", exc)

    def ingest_cycle(self, market: Market, slot: datetime | None = None) -> None:
        """Ingest, then forecast if the newest candle has no forecast yet; train if there is no model.
        `slot`: the ingest schedule's fire time this run belongs to; if another daemon ingested the
        market for it already, this run only asks for a training if the market has no model (so
        that another daemon takes over a first training whose daemon died)."""
        from jobs.ingest import ingest_market

        def ingest(lock):
            if lock.is_done(slot):
                return NOTHING
            outcome = ingest_market(self.services, market,
                                    backfill_days=self.settings.backfill_days, before_write=lock.ensure)
            lock.mark_done(slot)
            return outcome

        with self._tracked(f"ingest:{market}"):
            failed = []
            status, outcome = self._step("ingest", market, ingest)
            if outcome is NOTHING:  # that daemon forecasts it too; a missing model is everyone's business
                log.debug("ingest %s: done for this hour by another daemon", market)
                self.refresh(market)
                st = self.state.snapshot()[market]
                if st.model is None and st.newest_candle is not None:
                    self.wake_training(market)
                return
            if status == FAILED:
                failed.append("ingest")
                log.warning("%s", retry_note(self.settings, market))
            self.refresh(market)
            st = self.state.snapshot()[market]
            if st.model is None and st.newest_candle is not None:
                self.wake_training(market)
            elif needs_forecast(st):
                status, _ = self._predict(market)
                if status == FAILED:
                    failed.append("predict")
            if failed:
                raise CycleFailed(f"{market}: {' and '.join(failed)} failed")

    def retrain_cycle(self, market: Market, only_if_no_model: bool = False, *, lock=None,
                      slot: datetime | None = None) -> None:
        """Train; if the new model is promoted, forecast the newest origin with it. `lock`: the
        train lock, when the caller claimed it already; `slot`: the retrain schedule's fire time,
        marked done for this market once the training ends (whatever its outcome: a market is
        trained once per schedule, not retried in a loop)."""
        from jobs.train import model_config, train_market

        def train(lock):
            if only_if_no_model:  # another worker may have trained one while this run waited
                self.refresh(market)
                if self.state.snapshot()[market].model is not None:
                    return NOTHING
            if lock.is_done(slot):
                return NOTHING
            try:
                return train_market(self.services, market, train_hours=self.settings.train_steps_for(market.interval),
                                    stop=StopWhenLockLost(self.stop, lock), before_write=lock.ensure,
                                    config=model_config(self.settings, market.interval))
            finally:
                # Not when the lock is lost or the daemon stops: another worker may take it over.
                if slot is not None and not self.stop.is_set() and lock.lost() is None:
                    lock.mark_done(slot)

        with self._tracked(f"train:{market}"):
            self.refresh(market)
            before = self.state.snapshot()[market].model
            status, outcome = self._step("train", market, train, lock=lock)
            if status == FAILED:
                raise CycleFailed(f"{market}: train failed")
            self.refresh(market)
            after = self.state.snapshot()[market].model
            if outcome not in (None, NOTHING) and after and (before is None or after["id"] != before["id"]):
                status, _ = self._predict(market, force=True)
                if status == FAILED:
                    raise CycleFailed(f"{market}: predict failed")

    def _predict(self, market: Market, *, force: bool = False):
        from jobs.predict import predict_market

        def run(lock):
            if not force:  # another worker may have written it while this run waited for the lock
                self.refresh(market)
                if not needs_forecast(self.state.snapshot()[market]):
                    return NOTHING
            outcome = predict_market(self.services, market, before_write=lock.ensure)
            self.refresh(market)
            return outcome
        return self._step("predict", market, run, wait=PREDICT_LOCK_WAIT_SECONDS)

    # ---- one step
    def _step(self, job: str, market: Market, fn, *, wait: float = 0.0, lock=None):
        """Run one job for one market under its lock (taken here, or `lock` if the caller holds it
        already): (status, fn's result, NOTHING if it found nothing to do, or None)."""
        if self.stop.is_set():
            return STOPPED, None
        self.failure_logged.reset()
        started = time.monotonic()
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
            self.metrics.job_done(job, market, FAILED, time.monotonic() - started)
            if self.stop.is_set() and _cancelled(exc):  # SIGTERM: the job's own line said so, at INFO
                pass
            elif not self.failure_logged.seen:  # e.g. the database was unreachable before a row existed
                log.error("job=%s market=%s status=failed error=%s", job, market, describe_error(exc))
            log.debug("job %s %s failed", job, market, exc_info=True)
            return FAILED, None
        self.metrics.job_done(job, market, OK, time.monotonic() - started)
        return OK, result

    def _record_skipped(self, job: str, market: Market) -> None:
        """Counted and logged, not written to `job_runs`: with daemons sharing markets a skip is the
        normal outcome of most ticks, and a row for each buried the runs that did something."""
        self.metrics.job_done(job, market, SKIPPED, None)
        log.info("job=%s market=%s status=skipped: another worker holds this job's lock for this market", job, market)

    def refresh(self, market: Market) -> None:
        try:
            self.state.refresh(self.services.sessions, market)
        except Exception as exc:  # the database is down: /healthz reports the growing lag
            log.debug("could not read the state of %s: %s", market, describe_error(exc))

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
        with self.services.sessions() as s, s.begin():
            runs = fail_stale_running(session=s, job=job, market=market, message=message)
            models = fail_stale_training(session=s, market=market) \
                if job == "train" else 0
        if runs or models:
            log.warning("%s %s: marked %d stale running job run(s) and %d training model run(s) failed",
                        job, market, runs, models)
