"""The daemon's schedules come from each interval's length: when, over one UTC day, a market of
each interval is asked for candles (5m, 15m, 1h, 4h, 1d),
with the default settings and with FORECASTER_INGEST_CRON overriding the hourly schedule."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from daemon.schedule_table import is_due, schedule_table
from exchanges.base import parse_market
from core.intervals import INTERVALS
from jobs.settings import load_settings

DAY = datetime(2026, 11, 28, tzinfo=timezone.utc)
def market_of(interval: str):
    return parse_market(f"upbit:ETH-KRW@{interval}")


def asked_over_the_day(interval: str, **settings) -> tuple[str, list[datetime]]:
    """(the ingest job's id, the times in DAY the market is asked for candles), with a store kept up
    to date by each ask (the newest candle is then the last closed one)."""
    market = market_of(interval)
    (schedule, _retrain) = schedule_table([market], load_settings(database_url="sqlite:///x.db", **settings))
    assert market in schedule.markets
    step = timedelta(minutes=market.period.minutes)
    newest = _last_closed(DAY - timedelta(seconds=1), step)  # caught up just before midnight
    asked = []
    for fire in fire_times(schedule.trigger(), DAY, DAY + timedelta(days=1)):
        if is_due(market.period, newest, fire):
            asked.append(fire)
            newest = _last_closed(fire, step)
    return schedule.id, asked


def fire_times(trigger, start: datetime, end: datetime) -> list[datetime]:
    fires = [trigger.get_next_fire_time(None, start)]
    while (following := trigger.get_next_fire_time(fires[-1], fires[-1] + timedelta(microseconds=1))) < end:
        fires.append(following)
    return fires


def _last_closed(now: datetime, step: timedelta) -> datetime:
    """Open time of the last candle closed at `now` (UTC-aligned grid)."""
    return DAY + ((now - DAY) // step) * step - step


def at(*hms: int) -> datetime:
    return DAY.replace(hour=hms[0], minute=hms[1], second=hms[2])


@pytest.mark.parametrize("interval, job, asked", [
    ("5m", "ingest-5m", [at(h, m, 10) for h in range(24) for m in range(0, 60, 5)]),
    ("15m", "ingest-15m", [at(h, m, 10) for h in range(24) for m in (0, 15, 30, 45)]),
    ("1h", "ingest", [at(h, 0, 10) for h in range(24)]),
    ("4h", "ingest", [at(h, 0, 10) for h in range(0, 24, 4)]),
    ("1d", "ingest", [at(0, 0, 10)]),
])
def test_each_interval_is_asked_at_every_close_of_its_own_candles(interval, job, asked):
    assert asked_over_the_day(interval) == (job, asked)


def test_the_ingest_cron_setting_moves_the_hourly_schedule_not_the_sub_hour_ones():
    settings = {"ingest_cron": "5 */2 * * *", "ingest_delay_seconds": 30}
    assert asked_over_the_day("1h", **settings) == ("ingest", [at(h, 5, 30) for h in range(0, 24, 2)])
    assert asked_over_the_day("4h", **settings) == ("ingest", [at(h, 5, 30) for h in range(0, 24, 4)])
    job, quarter = asked_over_the_day("15m", **settings)
    assert job == "ingest-15m" and quarter[:3] == [at(0, 0, 30), at(0, 15, 30), at(0, 30, 30)] and len(quarter) == 96


def test_markets_sharing_a_schedule_share_one_job_and_every_market_is_retrained():
    markets = [parse_market(m) for m in ("bithumb:ETH-KRW", "binance:ETH-USDT@15m", "upbit:ETH-KRW@1d",
                                         "binance:BTC-USDT@15m")]
    table = schedule_table(markets, load_settings(database_url="sqlite:///x.db", retrain_cron="0 3 * * *"))
    assert [(s.id, s.cron, [str(m) for m in s.markets]) for s in table] == [
        ("ingest", "0 * * * *", ["bithumb:ETH-KRW", "upbit:ETH-KRW@1d"]),
        ("ingest-15m", "*/15 * * * *", ["binance:ETH-USDT@15m", "binance:BTC-USDT@15m"]),
        ("retrain", "0 3 * * *", [str(m) for m in markets]),
    ]


def test_an_empty_store_is_always_due():
    assert is_due(INTERVALS["1d"], None, at(7, 0, 10))
    assert not is_due(INTERVALS["1d"], DAY - timedelta(days=1), at(7, 0, 10))
