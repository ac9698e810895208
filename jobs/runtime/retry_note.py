"""What the daemon says after a failed ingest: when it tries again and what works meanwhile, so an
operator offline (or behind a dead exchange) knows the daemon is not stuck and what to do."""
from __future__ import annotations

from datetime import datetime, timezone

from exchanges.base import Market
from jobs.runtime.schedules import cron_trigger

QUARTER_HOUR_CRON = "*/15 * * * *"  # 15m markets' ingest (jobs/runtime/daemon.py)


def next_ingest(settings, market: Market, now: datetime | None = None) -> datetime | None:
    cron = QUARTER_HOUR_CRON if market.interval == "15m" else settings.ingest_cron
    trigger = cron_trigger(cron, delay_seconds=settings.ingest_delay_seconds)
    return trigger.get_next_fire_time(None, now or datetime.now(timezone.utc))


def retry_note(settings, market: Market, now: datetime | None = None) -> str:
    when = next_ingest(settings, market, now)
    at = f"{when:%Y-%m-%d %H:%M:%S}Z" if when else "the next ingest"
    return (f"ingest {market} failed: the daemon tries again at {at} (FORECASTER_INGEST_CRON "
            f"{settings.ingest_cron!r}) and keeps forecasting from the candles stored; without the "
            f"network, `forecaster import-csv PATH --market {market}` loads candles from a file")
