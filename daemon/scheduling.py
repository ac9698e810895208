"""The daemon's APScheduler 3.x BlockingScheduler (UTC), its jobs (one per row of the schedule
table, daemon/schedule_table.py) and the listener that turns what the scheduler reports into one
log line each.

Every job has an explicit id, coalesce=True, max_instances=1 and a misfire grace of
FORECASTER_MISFIRE_GRACE_SECONDS. Each one only hands work to the daemon's own pools
(daemon/pools.py, daemon/training.py) and returns at once, so the scheduler's standard thread pool
executor is never busy for long. That is what keeps a stuck job from holding up the exit: the
executor's threads are ones the interpreter waits for at exit, but they are idle; the work runs on
the pools' daemon threads, which a job stuck in a slow exchange call cannot keep alive past the
shutdown grace. (A custom executor once ran each job on a daemon thread of its own through
APScheduler's private `run_job`; handing off to the pools gives the same through the public API.)
Jobs do not raise: each cycle logs and records its own faults, so an error event is a bug.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Callable

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler

from daemon.schedule_table import Schedule
from daemon.state import DaemonState
from jobs.recording import one_line

log = logging.getLogger("forecaster.daemon")
EXECUTOR_THREADS = 4  # the jobs only hand work on: one thread each is plenty


def make_scheduler() -> BlockingScheduler:
    return BlockingScheduler(timezone=timezone.utc, executors={"default": ThreadPoolExecutor(EXECUTOR_THREADS)})


def job_options(misfire_grace_seconds: int) -> dict:
    grace = misfire_grace_seconds or None  # 0: run however late
    return {"coalesce": True, "max_instances": 1, "misfire_grace_time": grace, "replace_existing": True}


def add_jobs(scheduler: BlockingScheduler, table: list[Schedule], triggers: dict, *, ingest: Callable[[Schedule], None],
             retrain: Callable[[], None], now: datetime, options: dict) -> None:
    """One job per schedule. Ingests also run at once (`now`): that is the catch-up at start."""
    for schedule in table:
        name = schedule.id.replace("-", " ")
        if schedule.job == "ingest":
            scheduler.add_job(ingest, triggers[schedule.id], args=[schedule], id=schedule.id, name=name,
                              next_run_time=now, **options)
        else:
            scheduler.add_job(retrain, triggers[schedule.id], id=schedule.id, name=name, **options)


class SchedulerEvents:
    """The scheduler's listener: its start marks the daemon running (for /healthz); a missed run,
    a run skipped while the previous one still runs, and a job's error are one line each."""

    MASK = EVENT_SCHEDULER_STARTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR

    def __init__(self, state: DaemonState, misfire_grace_seconds: int) -> None:
        self.state, self.grace = state, misfire_grace_seconds

    def __call__(self, event) -> None:
        if event.code == EVENT_SCHEDULER_STARTED:
            self.state.running = True
        elif event.code == EVENT_JOB_MISSED:
            log.warning("job %s missed its run of %s by more than %ss (process busy or suspended); "
                        "the next run catches up", event.job_id, _at(event.scheduled_run_time), self.grace)
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.warning("job %s skipped its run of %s: its previous run still runs", event.job_id,
                        ", ".join(map(_at, event.scheduled_run_times)))
        elif event.code == EVENT_JOB_ERROR:  # a bug, not a fault: one line, the traceback at DEBUG
            log.error("job %s failed unexpectedly: %s: %s", event.job_id, type(event.exception).__name__,
                      one_line(event.exception))
            log.debug("traceback of job %s:\n%s", event.job_id, event.traceback)


def _at(when: datetime) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%S}Z"
