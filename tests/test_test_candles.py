"""The test-only candles of other intervals (tests/helpers/candle_data.py) are the real hours,
regrouped on each exchange's grid, and the synthetic quarters add up to the real hour exactly."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import groupby

import pytest

from exchanges.base import make_candle, parse_market
from exchanges.registry import grid_of
from tests.helpers.candle_data import candles_for, load_csv_slice, quarter_hours, resample_candles
from tests.helpers.paths import BINANCE_CSV, UPBIT_CSV

UTC = timezone.utc
KRW = load_csv_slice(UPBIT_CSV, "2023-11-27T00:00:00Z", 24 * 14)  # holds Upbit's 16Z..20Z gap of 2023-12-03


def _hours(candles, start, end):
    return [c for c in candles if start <= c.open_time < end]


def test_a_4h_candle_is_its_four_real_hours():
    (c,) = [c for c in resample_candles(KRW, "4h") if c.open_time == datetime(2023, 12, 1, 8, tzinfo=UTC)]
    hours = _hours(KRW, c.open_time, c.open_time + timedelta(hours=4))
    assert len(hours) == 4
    assert (c.open, c.high, c.low, c.close) == (hours[0].open, max(h.high for h in hours),
                                                min(h.low for h in hours), hours[-1].close)
    assert c.volume == sum(h.volume for h in hours)


def test_bithumb_days_run_from_15_00_utc_and_hold_those_24_hours():
    days = candles_for("bithumb:ETH-KRW@1d", KRW)
    assert {c.open_time.time() for c in days} == {datetime(2000, 1, 1, 15).time()}  # 00:00 KST
    day = days[3]
    hours = _hours(KRW, day.open_time, day.open_time + timedelta(days=1))
    assert hours[0].open_time.hour == 15 and len(hours) == 24
    assert (day.open, day.close) == (hours[0].open, hours[-1].close)


def test_utc_days_and_4h_blocks_for_upbit_and_binance():
    for market in ("upbit:ETH-KRW@1d", "binance:ETH-USDT@1d"):
        assert {c.open_time.hour for c in candles_for(market, KRW)} == {0}
    assert {c.open_time.hour for c in candles_for("upbit:ETH-KRW@4h", KRW)} == {0, 4, 8, 12, 16, 20}
    assert {c.open_time.hour for c in candles_for("bithumb:ETH-KRW@4h", KRW)} == {3, 7, 11, 15, 19, 23}


def test_a_block_whose_hours_are_all_missing_is_missing_and_partial_ends_are_dropped():
    four_hourly = {c.open_time for c in resample_candles(KRW, "4h")}
    assert datetime(2023, 12, 3, 16, tzinfo=UTC) not in four_hourly  # Upbit's maintenance, 16Z..20Z
    assert datetime(2023, 12, 3, 20, tzinfo=UTC) in four_hourly  # 21Z..23Z traded
    odd_start = load_csv_slice(UPBIT_CSV, "2023-12-01T05:00:00Z", 24 * 3)  # 05Z .. 04Z: two partial days
    assert [c.open_time.day for c in resample_candles(odd_start, "1d")] == [2, 3]


def test_resampling_refuses_what_it_cannot_build():
    with pytest.raises(ValueError, match="for 15m, see quarter_hours"):
        resample_candles(KRW, "15m")


@pytest.mark.parametrize("path", [UPBIT_CSV, BINANCE_CSV])
def test_quarter_hours_are_valid_candles_that_add_up_to_the_real_hour_exactly(path):
    hourly = load_csv_slice(path, "2023-06-01T00:00:00Z", 24 * 7)
    quarters = quarter_hours(hourly)
    assert len(quarters) == 4 * len(hourly)
    for q in quarters:  # each passes the one validator, on the 15-minute grid
        make_candle(q.open_time, q.open, q.high, q.low, q.close, q.volume, where="q",
                    grid=grid_of(parse_market("upbit:ETH-KRW@15m")))
    for hour, (_, group) in zip(hourly, groupby(quarters, key=lambda q: q.open_time.replace(minute=0))):
        qs = list(group)
        assert [q.open_time - hour.open_time for q in qs] == [timedelta(minutes=m) for m in (0, 15, 30, 45)]
        assert (qs[0].open, max(q.high for q in qs), min(q.low for q in qs), qs[-1].close) == \
            (hour.open, hour.high, hour.low, hour.close)
        assert sum(q.volume for q in qs) == hour.volume


def test_candles_for_an_hourly_market_are_the_hours():
    assert candles_for("bithumb:ETH-KRW", KRW) == KRW
