"""`forecaster run`: one APScheduler 3.x BlockingScheduler (UTC) serving every market.

Two scheduled jobs, each with an explicit id, coalesce=True, max_instances=1 and a misfire grace of
FORECASTER_MISFIRE_GRACE_SECONDS; each only hands work to a pool and returns:
- `ingest` on FORECASTER_INGEST_CRON (+ FORECASTER_INGEST_DELAY_SECONDS), and `ingest-15m` every
  15 minutes (+ the same delay) when a 15m market is served: every market's ingest cycle (new
  closed candles, then a forecast if the newest candle has none yet) goes to the ingest pool; a
  4h or 1d market only when a candle of its own has closed since its newest stored one (so a day
  market is asked once a day, a few seconds after its exchange's day boundary); the ingest pool is FORECASTER_INGEST_WORKERS threads of its own, so an hour's forecasts never wait behind a
  training. It also runs once at start: that is the catch-up, decided from the data (an empty
  store back-fills, a market without a promoted model gets trained, a newest origin without a
  forecast gets one).
- `retrain` on FORECASTER_RETRAIN_CRON: the training workers (FORECASTER_TRAIN_WORKERS) retrain
  every market once for that schedule, stalest model first (jobs/runtime/training.py); a promoted model
  gets a new forecast at once.
A market without a promoted model is trained as soon as a training worker is free, after each of
its ingests, until a model passes the gate.

Several daemons may share one Postgres: each job and market runs in one of them at a time, and the
work of a schedule is done once, by whichever daemon gets to it (done marks in `job_locks`); each
daemon takes the markets of an ingest in its own rotated order, so that they meet seldom. A SQLite
file is served by one daemon only (a second one is refused at start).

What a job does for its market, under which lock, and how faults are recorded: jobs/runtime/cycles.py.

Shutdown (SIGTERM, SIGINT): no new job starts, a running training is cancelled between epochs (it
is never promoted), running ingests and forecasts get SHUTDOWN_GRACE_SECONDS to finish, then the
process exits 0 (0.3 s when idle, under 2 s during a training in the tests). Work still running
after the grace is abandoned: its transaction rolls back with its connection, and its `running` row
is marked failed by the next run of that job.
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from datetime import datetime, timezone

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, EVENT_SCHEDULER_STARTED
from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler

from db.engine import safe_url
from db.job_runs import DAEMON_JOBS
from exchanges.base import Market
from jobs.bootstrap import Services, bootstrap
from jobs.runtime.cycles import CycleFailed, MarketCycles
from jobs.runtime.health import DaemonState, HealthServer, Metrics
from jobs.runtime.locks import ProcessLock, make_job_locks
from jobs.runtime.pools import WorkPool, group_limit_for
from jobs.recording import describe_error, one_line
from jobs.runtime.schedules import cron_trigger, latest_fire_time
from jobs.runtime.training import TrainingWorkers, resolve_train_workers, threads_per_training, use_torch_threads

log = logging.getLogger("forecaster.daemon")
SHUTDOWN_GRACE_SECONDS = 10.0
QUARTER_HOUR_CRON = "*/15 * * * *"  # the ingest of 15m markets, FORECASTER_INGEST_DELAY_SECONDS after


def run_daemon(settings) -> int:
    """Run until SIGTERM or Ctrl-C; returns the exit status. Raises JobError (DaemonRefused) when
    another daemon serves the same SQLite file, NotMigrated or a database error at start."""
    # Before torch loads: OpenMP worker threads otherwise spin for a while after every forecast,
    # which cost 4x the CPU of an ingest + predict cycle in bench/daemon_cycles.py; and as many
    # threads per training as leave every core one thread when the trainings run side by side.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    workers = resolve_train_workers(settings.train_workers, settings.device)
    use_torch_threads(threads_per_training(workers))
    services = bootstrap(settings)
    try:
        services.require_schema()
        with ProcessLock(settings.database_url):
            return Daemon(services, train_workers=workers).run()
    finally:
        services.close()
        # The process exits next: spare it the final garbage collection over torch's object graph,
        # which takes 1-2 s of the shutdown on a small machine and frees nothing the OS would not.
        gc.freeze()


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


class Daemon:
    def __init__(self, services: Services, *, train_workers: int = 1) -> None:
        self.services, self.settings = services, services.settings
        self.markets: list[Market] = self.settings.market_list()
        self.stop = threading.Event()  # set on SIGTERM/SIGINT; training checks it between epochs
        self.locks = make_job_locks(self.settings.database_url, self.settings.lock_lease_seconds)
        self.state = DaemonState.for_markets(self.markets, self.settings.healthz_max_lag_hours)
        self.cycles = MarketCycles(services, self.locks, self.state, None, self.stop, self._wake_training)
        # Each exchange gets its share of the ingest workers (at least one), so one slow exchange's
        # markets cannot keep another's waiting (pools.group_limit_for).
        exchanges = len({m.exchange for m in self.markets})
        ingest_threads = max(self.settings.ingest_workers, exchanges)
        self.ingest_pool = WorkPool("ingest", ingest_threads, group_limit_for(ingest_threads, exchanges))
        self.training = TrainingWorkers(train_workers, self.cycles, self.locks, self.state, self.markets, self.stop)
        self.metrics = Metrics(self.state, pools={"ingest": self.ingest_pool, "train": self.training})
        self.cycles.metrics = self.metrics
        self.scheduler = BlockingScheduler(timezone=timezone.utc, executors={"default": DaemonThreadExecutor()})
        delay = self.settings.ingest_delay_seconds
        self._ingest_trigger = cron_trigger(self.settings.ingest_cron, delay_seconds=delay)
        self._quarter_trigger = cron_trigger(QUARTER_HOUR_CRON, delay_seconds=delay)
        self._retrain_trigger = cron_trigger(self.settings.retrain_cron)
        # Where this daemon starts each round of ingests: daemons sharing markets start apart.
        self._ingest_offset = os.getpid() % max(1, len(self.markets))
        self._stop_requested: float | None = None

    # ---- lifecycle
    def run(self) -> int:
        self.locks.prepare(DAEMON_JOBS, self.markets)
        self.cycles.sweep_stale(self.markets)
        for m in self.markets:
            self.cycles.refresh(m)
        self._add_jobs()
        self._resume_retrain()
        server = None
        if self.settings.http_port:
            from jobs.web.pages import Pages
            pages = Pages(self.services.sessions, self.markets)
            server = HealthServer(self.state, self.metrics, self.settings.http_port, self.settings.http_host,
                                  pages=pages).start()
        jobs_logger = logging.getLogger("forecaster.jobs")
        jobs_logger.addFilter(self.cycles.failure_logged)
        if self.settings.log_level != "DEBUG":  # our listener logs job errors in one line
            logging.getLogger("apscheduler.executors.default").setLevel(logging.CRITICAL)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self.training.start()
        log.info("daemon %d serving %s on %s: ingest %r +%ds (%d at once), retrain %r (%d at once), http %s",
                 os.getpid(), _listed(self.markets), safe_url(self.settings.database_url), self.settings.ingest_cron,
                 self.settings.ingest_delay_seconds, self.settings.ingest_workers, self.settings.retrain_cron,
                 self.training.size, f"{server.host}:{server.port}" if server else "off")
        try:
            if not self.stop.is_set():
                self.scheduler.start()  # blocks until _on_signal shuts it down
        finally:
            self.state.running = False
            self.ingest_pool.close()
            self.training.close()
            left = self.cycles.wait_idle((self._stop_requested or time.monotonic()) + SHUTDOWN_GRACE_SECONDS)
            for s, handler in previous.items():
                signal.signal(s, handler)
            jobs_logger.removeFilter(self.cycles.failure_logged)
            if server:
                server.close()
            self.locks.close()
        waited = time.monotonic() - (self._stop_requested or time.monotonic())
        if left:
            log.warning("stopped after %.1fs without waiting for %s: its transaction rolls back and its run "
                        "is marked failed by the next run", waited, ", ".join(left))
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

    # ---- scheduling
    def _job_options(self) -> dict:
        grace = self.settings.misfire_grace_seconds or None  # 0: run however late
        return {"coalesce": True, "max_instances": 1, "misfire_grace_time": grace, "replace_existing": True}

    def _add_jobs(self) -> None:
        now = datetime.now(timezone.utc)
        quarter = [m for m in self.markets if m.interval == "15m"]
        hourly_or_longer = [m for m in self.markets if m.interval != "15m"]
        if hourly_or_longer:
            self.scheduler.add_job(self._ingest_all, self._ingest_trigger, args=[hourly_or_longer, self._ingest_trigger],
                                   id="ingest", name="ingest", next_run_time=now, **self._job_options())
        if quarter:
            self.scheduler.add_job(self._ingest_all, self._quarter_trigger, args=[quarter, self._quarter_trigger],
                                   id="ingest-15m", name="ingest 15m", next_run_time=now, **self._job_options())
        self.scheduler.add_job(self._retrain_all, self._retrain_trigger, id="retrain", name="retrain",
                               **self._job_options())
        self.scheduler.add_listener(self._on_scheduler_event,
                                    EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_SCHEDULER_STARTED)

    def _ingest_all(self, markets: list[Market], trigger) -> None:
        """Every due market's ingest cycle into the ingest pool (one per market at a time)."""
        now = datetime.now(timezone.utc)
        slot = latest_fire_time(trigger, now)
        offset = self._ingest_offset % max(1, len(markets))
        snapshot = self.state.snapshot()
        for m in markets[offset:] + markets[:offset]:
            if not _due(m, snapshot[m].newest_candle, now):
                continue
            if not self.ingest_pool.submit(str(m), lambda m=m: self.cycles.run_logged(self.cycles.ingest_cycle, m, slot),
                                           group=m.exchange):
                log.info("ingest %s: the previous ingest of this market is still queued or running", m)

    def _retrain_all(self) -> None:
        from jobs.retention import prune_live_forecasts
        slot = latest_fire_time(self._retrain_trigger, datetime.now(timezone.utc))
        if slot is not None:
            self.training.schedule(slot)
        # Any daemon may do it, twice is harmless: the second finds nothing left to delete.
        prune_live_forecasts(self.services, self.markets, self.settings.keep_forecast_days)

    def _resume_retrain(self) -> None:
        """The retrain slot this daemon was down or crashed in is trained now, not a schedule later."""
        try:
            self.training.resume(latest_fire_time(self._retrain_trigger, datetime.now(timezone.utc)))
        except Exception as exc:  # the database: the next schedule trains them
            log.warning("could not tell which markets the last retrain left out: %s", describe_error(exc))

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
        """Train a market that has no promoted model as soon as a training worker is free."""
        if not self.stop.is_set():
            self.training.request(market)


def _due(market: Market, newest: datetime | None, now: datetime) -> bool:
    """Whether a market's ingest has anything to ask for: always for 15m and 1h markets (each tick
    of their schedule is a new candle, and the last one is re-read for amendments); for 4h and 1d
    markets only once a candle after the newest stored one has closed."""
    if newest is None or market.interval in ("15m", "1h"):
        return True
    return market.step.closed_after(newest, now) >= 1


def _listed(markets: list[Market], shown: int = 10) -> str:
    names = ", ".join(map(str, markets[:shown]))
    return names if len(markets) <= shown else f"{names} and {len(markets) - shown} more"
