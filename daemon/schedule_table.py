"""The daemon's schedules as one table, derived from the length of each market's interval, so a new
interval gets its schedule without a change here.

- Ingest, intervals shorter than an hour (5m, 15m): a job of their own, `ingest-<interval>`,
  every candle length at the candle's close (+ FORECASTER_INGEST_DELAY_SECONDS), e.g. `*/15 * * * *`.
  Every tick closes a candle, so every market of the job is asked each time. The length must
  divide the hour (a cron step restarts each hour).
- Ingest, an hour or longer (1h, 4h, 1d): the job `ingest` on FORECASTER_INGEST_CRON (hourly by
  default, + the delay). A 1h market is asked at every tick (a new candle, and the last one is
  re-read for amendments); a longer one only once a candle of its own has closed after its newest
  stored one, so a day market is asked once a day, a few seconds after its exchange's day boundary.
- Retrain: the job `retrain` on FORECASTER_RETRAIN_CRON, every market (daemon/training.py).

`interval` below is anything with `name`, `minutes` and `closed_after(newest, now)` (a market's
`step`), so a test can ask for the schedule of an interval the product does not serve yet.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from apscheduler.triggers.cron import CronTrigger

from jobs.cron import cron_trigger

HOUR_MINUTES = 60


@dataclass(frozen=True)
class Schedule:
    job: str  # what it runs: "ingest" or "retrain"
    id: str  # the scheduler's job id, also its name in logs
    cron: str
    delay_seconds: int = 0
    markets: tuple = field(default=(), compare=False)

    def trigger(self) -> CronTrigger:
        return cron_trigger(self.cron, delay_seconds=self.delay_seconds)


def ingest_schedule(interval, ingest_cron: str, delay_seconds: int) -> Schedule:
    """The ingest schedule of markets of `interval`."""
    if interval.minutes < HOUR_MINUTES:
        return Schedule("ingest", f"ingest-{interval.name}", f"*/{interval.minutes} * * * *", delay_seconds)
    return Schedule("ingest", "ingest", ingest_cron, delay_seconds)


def is_due(interval, newest: datetime | None, now: datetime) -> bool:
    """Whether a market of `interval` whose newest stored candle opened at `newest` has anything to
    ask for at a tick of its ingest schedule at `now`: always for an hour or less (each tick closes
    a candle) and for an empty store; for longer intervals once a candle closed after `newest`."""
    return newest is None or interval.minutes <= HOUR_MINUTES or interval.closed_after(newest, now) >= 1


def schedule_table(markets: list, settings) -> list[Schedule]:
    """Every scheduled job of a daemon serving `markets`: one ingest job per distinct schedule (each
    with its markets, in the order given), then the retrain."""
    ingests: dict[Schedule, list] = {}
    for m in markets:
        ingests.setdefault(ingest_schedule(m.period, settings.ingest_cron, settings.ingest_delay_seconds), []).append(m)
    table = [Schedule(s.job, s.id, s.cron, s.delay_seconds, tuple(ms)) for s, ms in ingests.items()]
    return table + [Schedule("retrain", "retrain", settings.retrain_cron, markets=tuple(markets))]


def next_ingest(settings, market, now: datetime) -> datetime | None:
    """When `market` is next ingested (its schedule's next fire after `now`)."""
    schedule = ingest_schedule(market.period, settings.ingest_cron, settings.ingest_delay_seconds)
    return schedule.trigger().get_next_fire_time(None, now)
