"""`forecaster run`: one APScheduler 3.x BlockingScheduler (UTC) serving every market.

Jobs, per market, each with an explicit id, coalesce=True, max_instances=1 and a misfire grace of
FORECASTER_MISFIRE_GRACE_SECONDS:
- `ingest:<market>` on FORECASTER_INGEST_CRON (+ FORECASTER_INGEST_DELAY_SECONDS): new closed
  candles, then a forecast if the newest candle has none yet. It also runs once at start: that is
  the catch-up, decided from the data (an empty store back-fills, a market without a promoted model
  gets trained, a newest origin without a forecast gets one).
- `retrain:<market>` on FORECASTER_RETRAIN_CRON: a new model; if it is promoted, a new forecast.
- `train-now:<market>`: one-off, added by an ingest that finds no promoted model (so training is
  retried after every ingest until a model passes the gate).

Each job runs for one market under a lock (jobs/locks.py) and leaves a `job_runs` row: one that
another worker is running is recorded as `skipped`. A fault (exchange, database, training) is one
log line and a `failed` row (when the database can be written); the next run retries it.

Shutdown (SIGTERM, SIGINT): no new job starts, a running training is cancelled between epochs (it
is never promoted), running ingests and forecasts get SHUTDOWN_GRACE_SECONDS to finish, then the
process exits 0. Work still running after that is abandoned: its transaction rolls back with its
connection and its `running` row is marked failed at the next start.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, EVENT_SCHEDULER_STARTED
from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler

from db.engine import safe_url
from db.job_runs import fail_stale_running, finish_job_run, start_job_run
from db.model_runs import fail_stale_training
from exchanges.base import Market
from jobs.bootstrap import Services, bootstrap
from jobs.health import DaemonState, HealthServer, Metrics
from jobs.locks import ProcessLock, make_job_locks
from jobs.recording import one_line
from jobs.schedules import cron_trigger

log = logging.getLogger("forecaster.daemon")
SHUTDOWN_GRACE_SECONDS = 10.0
PREDICT_LOCK_WAIT_SECONDS = 30.0  # a forecast another worker is writing is worth waiting for
JOBS = ("ingest", "train", "predict")
OK, FAILED, SKIPPED, STOPPED = "ok", "failed", "skipped", "stopped"
NOTHING = object()  # a step that found nothing to do: no run, no metrics


def run_daemon(settings) -> int:
    """Run until SIGTERM or Ctrl-C; returns the exit status. Raises JobError (DaemonRefused) when
    another daemon serves the same SQLite file, NotMigrated or a database error at start."""
    services = bootstrap(settings)
    try:
        services.require_schema()
        with ProcessLock(settings.database_url):
            return Daemon(services).run()
    finally:
        services.close()


class CycleFailed(Exception):
    """A step of a scheduled job failed; it was logged and recorded already."""


class DaemonThreadExecutor(BaseExecutor):
    """Each job run on a thread of its own that never keeps the process alive: a job stuck in a
    slow exchange call cannot hold up exit after the shutdown grace period."""

    def _do_submit_job(self, job, run_times) -> None:
        def target():
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException as exc:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, events)
        threading.Thread(target=target, name=job.id, daemon=True).start()


class _FailureLogged(logging.Filter):
    """Notes, per thread, that `jobs.recording` logged a job failure, so it is not logged twice."""

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


def describe(exc: BaseException) -> str:
    from sqlalchemy.exc import SQLAlchemyError
    if isinstance(exc, SQLAlchemyError) and getattr(exc, "orig", None) is not None:
        return f"database: {one_line(exc.orig)}"
    return f"database: {one_line(exc)}" if isinstance(exc, SQLAlchemyError) else one_line(exc)


class Daemon:
    def __init__(self, services: Services) -> None:
        self.services, self.settings = services, services.settings
        self.markets: list[Market] = self.settings.market_list()
        self.stop = threading.Event()  # set on SIGTERM/SIGINT; training checks it between epochs
        self.locks = make_job_locks(self.settings.database_url)
        self.state = DaemonState.for_markets(self.markets, self.settings.healthz_max_lag_hours)
        self.metrics = Metrics(self.state)
        self.scheduler = BlockingScheduler(timezone=timezone.utc, executors={"default": DaemonThreadExecutor()})
        self._running: set[str] = set()
        self._cond = threading.Condition()
        self._predict_mutex = threading.Lock()  # jobs.predict keeps one model in a shared cache
        self._failure_logged = _FailureLogged()
        self._stop_requested: float | None = None

    # ---- lifecycle
    def run(self) -> int:
        self._sweep_stale()
        for m in self.markets:
            self._refresh(m)
        self._add_jobs()
        server = None
        if self.settings.http_port:
            server = HealthServer(self.state, self.metrics, self.settings.http_port).start()
        logging.getLogger("forecaster.jobs").addFilter(self._failure_logged)
        if self.settings.log_level != "DEBUG":  # our listener logs job errors in one line
            logging.getLogger("apscheduler.executors.default").setLevel(logging.CRITICAL)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        log.info("daemon %d serving %s on %s: ingest %r +%ds, retrain %r, http %s", os.getpid(),
                 ", ".join(map(str, self.markets)), safe_url(self.settings.database_url),
                 self.settings.ingest_cron, self.settings.ingest_delay_seconds, self.settings.retrain_cron,
                 f":{server.port}" if server else "off")
        try:
            if not self.stop.is_set():
                self.scheduler.start()  # blocks until _on_signal shuts it down
        finally:
            self.state.running = False
            left = self._drain()
            for s, handler in previous.items():
                signal.signal(s, handler)
            logging.getLogger("forecaster.jobs").removeFilter(self._failure_logged)
            if server:
                server.close()
            self.locks.close()
        waited = time.monotonic() - (self._stop_requested or time.monotonic())
        if left:
            log.warning("stopped after %.1fs without waiting for %s: its transaction rolls back and its run "
                        "is marked failed at the next start", waited, ", ".join(left))
        else:
            log.info("stopped in %.1fs", waited)
        return 0

    def _on_signal(self, signum, _frame) -> None:
        if self.stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s: stopping (running ingests and forecasts get %.0fs, training is cancelled)",
                 signal.Signals(signum).name, SHUTDOWN_GRACE_SECONDS)
        self._stop_requested = time.monotonic()
        self.stop.set()
        # Not from inside the handler: the main thread may hold a lock shutdown() needs.
        threading.Thread(target=self._shutdown_scheduler, name="shutdown", daemon=True).start()

    def _shutdown_scheduler(self) -> None:
        for _ in range(100):  # the signal may arrive while the scheduler is still starting
            try:
                self.scheduler.shutdown(wait=False)
                return
            except SchedulerNotRunningError:
                time.sleep(0.05)

    def _drain(self) -> list[str]:
        """Wait up to the grace period for the running jobs; the names of those still running."""
        deadline = (self._stop_requested or time.monotonic()) + SHUTDOWN_GRACE_SECONDS
        with self._cond:
            while self._running and (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)
            return sorted(self._running)

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

    # ---- scheduling
    def _job_options(self) -> dict:
        grace = self.settings.misfire_grace_seconds or None  # 0: run however late
        return {"coalesce": True, "max_instances": 1, "misfire_grace_time": grace, "replace_existing": True}

    def _add_jobs(self) -> None:
        s = self.settings
        now = datetime.now(timezone.utc)
        for m in self.markets:
            self.scheduler.add_job(self.ingest_cycle, cron_trigger(s.ingest_cron, delay_seconds=s.ingest_delay_seconds),
                                   args=[m], id=f"ingest:{m}", name=f"ingest {m}", next_run_time=now,
                                   **self._job_options())
            self.scheduler.add_job(self.retrain_cycle, cron_trigger(s.retrain_cron),
                                   args=[m], id=f"retrain:{m}", name=f"retrain {m}", **self._job_options())
        self.scheduler.add_listener(self._on_scheduler_event,
                                    EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_SCHEDULER_STARTED)

    def _on_scheduler_event(self, event) -> None:
        if event.code == EVENT_SCHEDULER_STARTED:
            self.state.running = True
        elif event.code == EVENT_JOB_MISSED:
            log.warning("job %s missed its run of %s by more than %ss (process busy or suspended); "
                        "the next run catches up", event.job_id, f"{event.scheduled_run_time:%Y-%m-%dT%H:%M:%S}Z",
                        self.settings.misfire_grace_seconds)
        elif event.code == EVENT_JOB_ERROR:
            if isinstance(event.exception, CycleFailed):
                log.debug("job %s: %s", event.job_id, event.exception)
            else:  # a bug, not a fault: one line, the traceback at DEBUG
                log.error("job %s failed unexpectedly: %s: %s", event.job_id, type(event.exception).__name__,
                          one_line(event.exception))
                log.debug("traceback of job %s:\n%s", event.job_id, event.traceback)

    def _wake_training(self, market: Market) -> None:
        with self._cond:
            if f"train:{market}" in self._running or self.stop.is_set():
                return
        log.info("%s has no promoted model: training now", market)
        try:
            self.scheduler.add_job(self.retrain_cycle, "date", args=[market, True], id=f"train-now:{market}",
                                   name=f"train {market}", **self._job_options())
        except SchedulerNotRunningError:
            pass

    # ---- the jobs
    def ingest_cycle(self, market: Market) -> None:
        """Ingest, then forecast if the newest candle has no forecast yet; train if there is no model."""
        from jobs.ingest import ingest_market
        with self._tracked(f"ingest:{market}"):
            failed = []
            status, _ = self._step("ingest", market, lambda: ingest_market(
                self.services.sessions, self.services.client(market.exchange), market,
                backfill_days=self.settings.backfill_days))
            if status == FAILED:
                failed.append("ingest")
            self._refresh(market)
            st = self.state.snapshot()[market]
            if st.model is None and st.newest_candle is not None:
                self._wake_training(market)
            elif _needs_forecast(st):
                status, _ = self._predict(market)
                if status == FAILED:
                    failed.append("predict")
            if failed:
                raise CycleFailed(f"{market}: {' and '.join(failed)} failed")

    def retrain_cycle(self, market: Market, only_if_no_model: bool = False) -> None:
        """Train; if the new model is promoted, forecast the newest origin with it."""
        from jobs.train import model_config, train_market

        def train():
            if only_if_no_model:  # another worker may have trained one while we waited
                self._refresh(market)
                if self.state.snapshot()[market].model is not None:
                    return NOTHING
            return train_market(self.services, market, train_hours=self.settings.train_hours, stop=self.stop,
                                config=model_config(self.settings))

        with self._tracked(f"train:{market}"):
            self._refresh(market)
            before = self.state.snapshot()[market].model
            status, outcome = self._step("train", market, train)
            if status == FAILED:
                raise CycleFailed(f"{market}: train failed")
            self._refresh(market)
            after = self.state.snapshot()[market].model
            if outcome is not None and after and (before is None or after["id"] != before["id"]):
                status, _ = self._predict(market, force=True)
                if status == FAILED:
                    raise CycleFailed(f"{market}: predict failed")

    def _predict(self, market: Market, *, force: bool = False):
        from jobs.predict import predict_market

        def run():
            if not force:  # another worker may have written it while we waited for the lock
                self._refresh(market)
                if not _needs_forecast(self.state.snapshot()[market]):
                    return NOTHING
            with self._predict_mutex:
                outcome = predict_market(self.services, market)
            self._refresh(market)
            return outcome
        return self._step("predict", market, run, wait=PREDICT_LOCK_WAIT_SECONDS)

    def _step(self, job: str, market: Market, fn, *, wait: float = 0.0):
        """Run one job for one market under its lock: (status, fn's result or None)."""
        if self.stop.is_set():
            return STOPPED, None
        self._failure_logged.reset()
        started = time.monotonic()
        try:
            with self.locks.hold(job, market, wait=wait) as held:
                if not held:
                    self._record_skipped(job, market)
                    return SKIPPED, None
                result = fn()
                if result is NOTHING:
                    return OK, None
        except Exception as exc:
            self.metrics.job_done(job, market, FAILED, time.monotonic() - started)
            if not self._failure_logged.seen:  # e.g. the database was unreachable before a row existed
                log.error("job=%s market=%s status=failed error=%s", job, market, describe(exc))
            log.debug("job %s %s failed", job, market, exc_info=True)
            return FAILED, None
        self.metrics.job_done(job, market, OK, time.monotonic() - started)
        return OK, result

    def _record_skipped(self, job: str, market: Market) -> None:
        self.metrics.job_done(job, market, SKIPPED, None)
        message = "another worker holds this job's lock for this market"
        log.info("job=%s market=%s status=skipped: %s", job, market, message)
        try:
            with self.services.sessions() as s, s.begin():
                run_id = start_job_run(session=s, job=job, exchange=market.exchange, symbol=market.symbol)
                finish_job_run(session=s, run_id=run_id, status=SKIPPED, rows=0, message=message)
        except Exception as exc:
            log.warning("could not record skipped %s of %s: %s", job, market, describe(exc))

    def _refresh(self, market: Market) -> None:
        try:
            self.state.refresh(self.services.sessions, market)
        except Exception as exc:  # the database is down: health reports the growing lag
            log.debug("could not read the state of %s: %s", market, describe(exc))

    def _sweep_stale(self) -> None:
        """Mark `running` job runs and `training` model runs failed, for every job and market whose
        lock we can take: no other daemon can be running them, so their process has died."""
        message = "abandoned: the process running it stopped (found at daemon start)"
        for m in self.markets:
            for job in JOBS:
                with self.locks.hold(job, m) as held:
                    if not held:
                        continue
                    with self.services.sessions() as s, s.begin():
                        runs = fail_stale_running(session=s, job=job, exchange=m.exchange, symbol=m.symbol,
                                                  message=message)
                        models = fail_stale_training(session=s, exchange=m.exchange, symbol=m.symbol) \
                            if job == "train" else 0
                if runs or models:
                    log.warning("%s %s: marked %d stale running job run(s) and %d training model run(s) failed",
                                job, m, runs, models)


def _needs_forecast(st) -> bool:
    return (st.model is not None and st.newest_candle is not None
            and (st.newest_origin is None or st.newest_origin < st.newest_candle))
