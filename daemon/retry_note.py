"""What the daemon says after a failed ingest: when it tries again and what works meanwhile, so an
operator offline (or behind a dead exchange) knows the daemon is not stuck and what to do."""
from __future__ import annotations

from datetime import datetime, timezone

from daemon.schedule_table import next_ingest
from core.market import Market


def retry_note(settings, market: Market, now: datetime | None = None) -> str:
    when = next_ingest(settings, market, now or datetime.now(timezone.utc))
    at = f"{when:%Y-%m-%d %H:%M:%S}Z" if when else "the next ingest"
    return (f"ingest {market} failed: the daemon tries again at {at} (FORECASTER_INGEST_CRON "
            f"{settings.ingest_cron!r}) and keeps forecasting from the candles stored; without the "
            f"network, `forecaster import-csv PATH --market {market}` loads candles from a file")
