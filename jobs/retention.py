"""FORECASTER_KEEP_FORECAST_DAYS: live forecasts whose target is older than that many days are
deleted once a day, when the retrain schedule fires (0, the default, keeps them all).

Live forecasts are the table that grows fastest (24 rows per market and hour: docs/scaling.md);
their accuracy (the forecast_accuracy view) is only kept for as long as they are. Backtest rows are
not touched: a re-run of the same backtest replaces them, so they do not grow with time.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from core.market import Market
from core.names import Job
from db.predictions import delete_live_before
from db.statistics import analyze_after_write
from jobs.recording import describe_error

if TYPE_CHECKING:
    from jobs.bootstrap import Services

log = logging.getLogger("forecaster.daemon")


def prune_live_forecasts(services: Services, markets: list[Market], keep_days: int, now: datetime | None = None) -> int:
    """Delete what is older than `keep_days` (per market, a transaction each); the rows deleted."""
    if keep_days <= 0:
        return 0
    before = (now or datetime.now(timezone.utc)) - timedelta(days=keep_days)
    deleted = 0
    for m in markets:
        try:
            with services.sessions() as s, s.begin():
                deleted += delete_live_before(session=s, market=m, before=before)
        except Exception as exc:  # tomorrow's run deletes what today's could not
            log.warning("deleting old forecasts of %s failed: %s", m, describe_error(exc))
    analyze_after_write(services.sessions, Job.RETENTION, deleted)  # the planner's row counts shrank
    log.info("deleted %d live forecasts with a target before %s (FORECASTER_KEEP_FORECAST_DAYS=%d)", deleted,
             f"{before:%Y-%m-%dT%H:%M}Z", keep_days)
    return deleted
