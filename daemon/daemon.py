"""`forecaster run`: one scheduler serving every market (daemon/scheduling.py), on the schedules of
daemon/schedule_table.py; each scheduled job only hands work to a pool and returns:
- an ingest job per schedule: every due market's ingest cycle (new closed candles, then a forecast
  if the newest candle has none yet) goes to the ingest pool, FORECASTER_INGEST_WORKERS threads of
  its own, so an hour's forecasts never wait behind a training. Each ingest job also runs once at
  start: that is the catch-up, decided from the data (an empty store back-fills, a market without
  a promoted model gets trained, a newest origin without a forecast gets one).
- `retrain`: the training workers (FORECASTER_TRAIN_WORKERS) retrain every market once for that
  schedule, stalest model first (daemon/training.py); a promoted model gets a new forecast at once.
A market without a promoted model is trained as soon as a training worker is free, after each of
its ingests, until a model passes the gate.

Several daemons may share one Postgres: each job and market runs in one of them at a time, and the
work of a schedule is done once, by whichever daemon gets to it (done marks in `job_locks`); each
daemon takes the markets of an ingest in its own rotated order, so that they meet seldom. A SQLite
file is served by one daemon only (a second one is refused at start: daemon/process_lock.py).

What a job does for its market: daemon/cycles.py; under which lock, and how faults are recorded:
daemon/steps.py.

Shutdown (SIGTERM, SIGINT): no new job starts, a running training is cancelled between epochs (it
is never promoted), running ingests and forecasts get SHUTDOWN_GRACE_SECONDS to finish, then the
process exits 0 (0.3 s when idle, under 2 s during a training in the tests). Work still running
after the grace is abandoned: its transaction rolls back with its connection, and its `running` row
is marked failed by the next run of that job.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time

from apscheduler.schedulers import SchedulerNotRunningError

from daemon.clock import SYSTEM_CLOCK
from daemon.cycles import MarketCycles
from daemon.health_server import HealthServer
from daemon.locks import make_job_locks
from daemon.metrics import Metrics
from daemon.pools import WorkPool, group_limit_for
from daemon.schedule_table import Schedule, is_due, schedule_table
from jobs.cron import latest_fire_time
from daemon.scheduling import SchedulerEvents, add_jobs, job_options, make_scheduler
from daemon.state import DaemonState
from daemon.steps import Steps
from daemon.training import TrainingWorkers
from daemon.use_cases import JOBS, UseCases
from db.engine import safe_url
from core.names import DAEMON_JOBS
from core.market import Market
from jobs.bootstrap import Services
from jobs.recording import describe_error

log = logging.getLogger("forecaster.daemon")
SHUTDOWN_GRACE_SECONDS = 10.0


class Daemon:
    def __init__(self, services: Services, *, train_workers: int = 1, clock=SYSTEM_CLOCK,
                 jobs: UseCases = JOBS, locks=None) -> None:
        """`clock`, `jobs`, `locks`: the real ones, or a test's fakes."""
        self.services, self.settings, self.clock = services, services.settings, clock
        self.markets: list[Market] = self.settings.market_list()
        self.stop = threading.Event()  # set on SIGTERM/SIGINT; training checks it between epochs
        self.locks = locks or make_job_locks(services)
        self.state = DaemonState.for_markets(self.markets, self.settings.healthz_max_lag_steps, clock)
        self.metrics = Metrics(self.state)
        self.steps = Steps(services, self.locks, self.metrics, self.stop, clock)
        self.cycles = MarketCycles(services, self.steps, self.state, self._wake_training, jobs=jobs, clock=clock)
        # Each exchange gets its share of the ingest workers (at least one), so one slow exchange's
        # markets cannot keep another's waiting (pools.group_limit_for).
        exchanges = len({m.exchange for m in self.markets})
        ingest_threads = max(self.settings.ingest_workers, exchanges)
        self.ingest_pool = WorkPool("ingest", ingest_threads, group_limit_for(ingest_threads, exchanges))
        self.upkeep_pool = WorkPool("upkeep", 1)  # pruning old forecasts, off the scheduler's threads
        self.training = TrainingWorkers(train_workers, self.cycles, self.locks, self.state, self.markets, self.stop,
                                        clock)
        self.metrics.watch_pools({"ingest": self.ingest_pool, "train": self.training})
        self.table = schedule_table(self.markets, self.settings)
        self.triggers = {s.id: s.trigger() for s in self.table}
        self.scheduler = make_scheduler()
        # Where this daemon starts each round of ingests: daemons sharing markets start apart.
        self._ingest_offset = os.getpid() % max(1, len(self.markets))
        self._stop_requested: float | None = None

    # ---- lifecycle
    def start_up(self) -> None:
        """Before the scheduler starts: lock rows and lease, what dead processes left `running`, the
        state of every market, the jobs (ingests due at once: the catch-up), an unfinished retrain."""
        self.locks.prepare(DAEMON_JOBS, self.markets)
        self.steps.sweep_stale(self.markets)
        for m in self.markets:
            self.cycles.refresh(m)
        add_jobs(self.scheduler, self.table, self.triggers, ingest=self.ingest_round, retrain=self.retrain_round,
                 now=self.clock.now(), options=job_options(self.settings.misfire_grace_seconds))
        self.scheduler.add_listener(SchedulerEvents(self.state, self.settings.misfire_grace_seconds),
                                    SchedulerEvents.MASK)
        self.resume_retrain()

    def run(self) -> int:
        self.start_up()
        server = None
        if self.settings.http_port:
            from reports.web.pages import Pages
            pages = Pages(self.services.sessions, self.markets)
            server = HealthServer(self.state, self.metrics, self.settings.http_port, self.settings.http_host,
                                  pages=pages).start()
        jobs_logger = logging.getLogger("forecaster.jobs")
        jobs_logger.addFilter(self.steps.failure_logged)
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
            self.close_pools()
            left = self.steps.wait_idle((self._stop_requested or self.clock.monotonic()) + SHUTDOWN_GRACE_SECONDS)
            for s, handler in previous.items():
                signal.signal(s, handler)
            jobs_logger.removeFilter(self.steps.failure_logged)
            if server:
                server.close()
            self.locks.close()
        waited = self.clock.monotonic() - (self._stop_requested or self.clock.monotonic())
        if left:
            log.warning("stopped after %.1fs without waiting for %s: its transaction rolls back and its run "
                        "is marked failed by the next run", waited, ", ".join(left))
        else:
            log.info("stopped in %.1fs", waited)
        return 0

    def close_pools(self) -> None:
        """Take no new work and drop what is queued; what runs finishes or stops on its own."""
        self.ingest_pool.close()
        self.upkeep_pool.close()
        self.training.close()

    def _on_signal(self, signum, _frame) -> None:
        if self.stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s: stopping (running ingests and forecasts get %.0fs, training is cancelled)",
                 signal.Signals(signum).name, SHUTDOWN_GRACE_SECONDS)
        self._stop_requested = self.clock.monotonic()
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

    # ---- the scheduled jobs: each hands its work to a pool and returns
    def ingest_round(self, schedule: Schedule) -> None:
        """Every due market of `schedule` into the ingest pool (one entry per market at a time)."""
        now = self.clock.now()
        slot = latest_fire_time(self.triggers[schedule.id], now)
        markets = list(schedule.markets)
        offset = self._ingest_offset % max(1, len(markets))
        snapshot = self.state.snapshot()
        for m in markets[offset:] + markets[:offset]:
            if not is_due(m.period, snapshot[m].newest_candle, now):
                continue
            if not self.ingest_pool.submit(str(m), lambda m=m: self.cycles.ingest_cycle(m, slot), group=m.exchange):
                log.info("ingest %s: the previous ingest of this market is still queued or running", m)

    def retrain_round(self) -> None:
        slot = latest_fire_time(self.triggers["retrain"], self.clock.now())
        if slot is not None:
            self.training.schedule(slot)
        self.upkeep_pool.submit("prune", self._prune)

    def _prune(self) -> None:
        from jobs.retention import prune_live_forecasts
        # Any daemon may do it, twice is harmless: the second finds nothing left to delete.
        prune_live_forecasts(self.services, self.markets, self.settings.keep_forecast_days, self.clock.now())

    def resume_retrain(self) -> None:
        """The retrain slot this daemon was down or crashed in is trained now, not a schedule later."""
        try:
            self.training.resume(latest_fire_time(self.triggers["retrain"], self.clock.now()))
        except Exception as exc:  # the database: the next schedule trains them
            log.warning("could not tell which markets the last retrain left out: %s", describe_error(exc))

    def _wake_training(self, market: Market) -> None:
        """Train a market that has no promoted model as soon as a training worker is free."""
        if not self.stop.is_set():
            self.training.request(market)


def _listed(markets: list[Market], shown: int = 10) -> str:
    names = ", ".join(map(str, markets[:shown]))
    return names if len(markets) <= shown else f"{names} and {len(markets) - shown} more"
