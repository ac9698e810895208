"""Crontab strings to APScheduler 3.x triggers: 5 fields, or 6 with seconds first."""
from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

_FIELDS_5 = ("minute", "hour", "day", "month", "day_of_week")


def cron_trigger(expression: str, *, delay_seconds: int = 0) -> CronTrigger:
    """`0 * * * *` or `*/5 * * * * *` (seconds first). A 5-field schedule fires `delay_seconds`
    after the minute, so an hourly ingest asks once the exchange has closed the hour."""
    fields = expression.split()
    try:
        if len(fields) == 5:
            return CronTrigger(second=str(delay_seconds % 60), timezone="UTC",
                               **dict(zip(_FIELDS_5, fields)))
        if len(fields) == 6:
            return CronTrigger(second=fields[0], timezone="UTC", **dict(zip(_FIELDS_5, fields[1:])))
    except ValueError as e:
        raise ValueError(f"{expression!r} is not a valid crontab: {e}") from None
    raise ValueError(f"{expression!r} has {len(fields)} fields; expected 5 (minute hour day month "
                     "weekday) or 6 (second first)")


def latest_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The newest fire time at or before `now`: the schedule slot a run belongs to, the same in
    every daemon with the same schedule however late each one's run starts. None if the schedule
    has not fired in the last four years."""
    span = timedelta(minutes=1)
    while span <= timedelta(days=1500):  # widen the window until it holds a fire time (29 Feb: 4 years)
        fire = trigger.get_next_fire_time(None, now - span)
        if fire is not None and fire <= now:
            while (later := trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))) is not None \
                    and later <= now:
                fire = later
            return fire
        span *= 2
    return None
