"""Intervals are time arithmetic: a name is a length, and grids, steps per day and the words of a
message follow from it, the same for every interval and every exchange's day start."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.grid import CandleGrid
from core.intervals import (INTERVALS, SUPPORTED, describe_steps, describe_steps_short, get_interval, minutes_of,
                            time_format)
from core.market import Market
from core.names import JOBS, Job, JobStatus, ModelStatus
from exchanges.registry import EXCHANGES, grid_of

NOW = datetime(2024, 3, 1, 16, 37, 12, tzinfo=timezone.utc)


def test_any_spelling_is_a_length_in_minutes():
    assert [minutes_of(n) for n in ("5m", "15m", "1h", "4h", "1d", "3d")] == [5, 15, 60, 240, 1440, 4320]
    with pytest.raises(ValueError, match="Nm, Nh or Nd"):
        minutes_of("1w")


def test_the_supported_intervals_and_their_lengths():
    assert SUPPORTED == tuple(INTERVALS) == ("5m", "15m", "1h", "4h", "1d")
    assert {n: iv.step for n, iv in INTERVALS.items()} == {
        "5m": timedelta(minutes=5), "15m": timedelta(minutes=15), "1h": timedelta(hours=1),
        "4h": timedelta(hours=4), "1d": timedelta(days=1)}
    assert [get_interval(n).steps_per_day for n in SUPPORTED] == [288, 96, 24, 6, 1]
    with pytest.raises(ValueError, match="interval '30m' is not one of 5m, 15m, 1h, 4h, 1d"):
        get_interval("30m")


@pytest.mark.parametrize("exchange", EXCHANGES)
@pytest.mark.parametrize("interval", SUPPORTED)
def test_grid_arithmetic_for_every_interval_and_day_start(exchange, interval):
    market = Market(exchange, "ETH", "USDT", interval)
    grid, step = grid_of(market), get_interval(interval).step
    assert grid == CandleGrid(step, EXCHANGES[exchange].day_start)
    floor = grid.floor(NOW)
    assert grid.contains(floor) and floor <= NOW < floor + step
    assert grid.last_closed(NOW) == floor - step  # the candle open at NOW has not closed
    assert not grid.contains(floor + timedelta(minutes=1))
    # a day boundary of the exchange is a candle start of every interval
    day_start = datetime(2024, 3, 1, tzinfo=timezone.utc) + EXCHANGES[exchange].day_start
    assert grid.contains(day_start)
    assert get_interval(interval).closed_after(floor - 3 * step, NOW) == 2


def test_a_day_starts_at_15_utc_on_bithumb_for_4h_and_day_candles():
    assert grid_of(Market("bithumb", "ETH", "KRW", "1d")).floor(NOW) == datetime(2024, 3, 1, 15, tzinfo=timezone.utc)
    assert grid_of(Market("bithumb", "ETH", "KRW", "4h")).floor(NOW) == datetime(2024, 3, 1, 15, tzinfo=timezone.utc)
    assert grid_of(Market("upbit", "ETH", "KRW", "4h")).floor(NOW) == datetime(2024, 3, 1, 16, tzinfo=timezone.utc)


def test_steps_are_worded_the_same_in_every_message():
    assert describe_steps(24, "1h") == "24 hours"
    assert describe_steps(18, "4h") == "18 steps of 4h"
    assert describe_steps(16, "15m") == "16 steps of 15m"
    assert describe_steps_short(5, "1h") == "5h" and describe_steps_short(16, "15m") == "16 x 15m"


def test_times_show_minutes_only_for_intervals_under_an_hour():
    t = datetime(2023, 12, 3, 15, 45, tzinfo=timezone.utc)
    assert [t.strftime(time_format(n)) for n in SUPPORTED] == [
        "2023-12-03T15:45", "2023-12-03T15:45", "2023-12-03T15", "2023-12-03T15", "2023-12-03T15"]


def test_the_stored_words_are_the_strings_in_the_database():
    assert Job.TRAIN == "train" and f"{Job.TRAIN}" == "train" and str(JobStatus.OK) == "ok"
    assert JOBS == ("ingest", "import", "train", "predict", "backtest")
    assert {s.value for s in ModelStatus} == {"training", "failed", "rejected", "trained", "promoted", "retired"}


def test_what_follows_from_an_interval_length_alone():
    from db.candles import describe_gaps
    from exchanges.v1_candles import v1_endpoint
    from reports.web.market_page import chart_window
    t = datetime(2023, 12, 3, 15, 45, tzinfo=timezone.utc)
    assert describe_gaps([(t, t + timedelta(minutes=75), 4)], interval="15m") == \
        "4 missing 15m candles in 1 gaps (largest: 4 x 15m after 2023-12-03T15:45Z)"
    assert [chart_window(n).days for n in SUPPORTED] == [1, 2, 7, 30, 180]
    assert [v1_endpoint(n) for n in ("5m", "4h", "1d")] == [
        ("/v1/candles/minutes/5", 5), ("/v1/candles/minutes/240", 240), ("/v1/candles/days", None)]
    assert all(ex.intervals == SUPPORTED for ex in EXCHANGES.values())  # every API offers each of them
