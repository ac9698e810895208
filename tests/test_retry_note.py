"""After a failed ingest the daemon says when it tries again, in UTC, by the market's own schedule,
and that `import-csv` loads candles without the network."""
from __future__ import annotations

from datetime import datetime, timezone

from daemon.retry_note import retry_note
from exchanges.base import parse_market
from jobs.settings import load_settings

NOW = datetime(2024, 1, 1, 10, 7, tzinfo=timezone.utc)


def test_the_note_names_the_next_try_and_the_offline_way_in():
    settings = load_settings(database_url="sqlite:///x.db")
    hourly = retry_note(settings, parse_market("bithumb:ETH-KRW"), NOW)
    delay = settings.ingest_delay_seconds
    assert f"tries again at 2024-01-01 11:00:{delay:02d}Z" in hourly
    assert "`forecaster import-csv PATH --market bithumb:ETH-KRW`" in hourly
    quarter = retry_note(settings, parse_market("binance:ETH-USDT@15m"), NOW)
    assert f"tries again at 2024-01-01 10:15:{delay:02d}Z" in quarter and "@15m" in quarter
