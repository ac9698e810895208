"""Candle grids: when each interval's candles open on each exchange, and the one validator that
refuses a row off the grid, whichever client parsed it."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from core.grid import HOURLY, CandleGrid, last_closed_open_time, utc_hour_floor
from exchanges.base import ExchangeError, closed_since, make_candle, parse_market
from exchanges.binance import parse_klines
from exchanges.registry import grid_of
from exchanges.v1_candles import parse_v1_page
from tests.helpers.paths import API_SAMPLES

UTC = timezone.utc
NOW = datetime(2023, 12, 10, 12, 30, tzinfo=UTC)


def at(day, hour, minute=0):
    return datetime(2023, 12, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize("market, last_closed", [
    ("bithumb:ETH-KRW@15m", at(10, 12, 15)),
    ("upbit:ETH-KRW", at(10, 11)),
    ("upbit:ETH-KRW@4h", at(10, 8)),  # 00, 04, 08, 12 UTC: 12:00 is open at 12:30
    ("bithumb:ETH-KRW@4h", at(10, 7)),  # 03, 07, 11 UTC: 11:00 is open at 12:30
    ("upbit:ETH-KRW@1d", at(9, 0)),
    ("binance:ETH-USDT@1d", at(9, 0)),
    ("bithumb:ETH-KRW@1d", at(8, 15)),  # the KST day of the 10th began at 2023-12-09T15:00Z and is open
])
def test_the_last_closed_candle_of_each_market(market, last_closed):
    grid = grid_of(parse_market(market))
    assert last_closed_open_time(NOW, grid) == grid.last_closed(NOW) == last_closed
    assert grid.contains(last_closed) and not grid.contains(last_closed + timedelta(minutes=5))


def test_hourly_defaults_keep_their_old_meaning():
    assert last_closed_open_time(NOW) == at(10, 11) and utc_hour_floor(NOW) == at(10, 12)
    assert grid_of(parse_market("bithumb:ETH-KRW")) == HOURLY == CandleGrid(timedelta(hours=1), timedelta(hours=15))
    kst = timezone(timedelta(hours=9))
    assert HOURLY.floor(datetime(2023, 12, 10, 21, 30, tzinfo=kst)) == at(10, 12)  # any offset in, UTC out


def test_a_grid_says_where_its_candles_open():
    assert grid_of(parse_market("bithumb:ETH-KRW@4h")).describe() == "every 4h from 03:00 UTC"
    assert grid_of(parse_market("bithumb:ETH-KRW@1d")).describe() == "every 1d from 15:00 UTC"
    assert grid_of(parse_market("binance:ETH-USDT@15m")).describe() == "every 15m from 00:00 UTC"
    with pytest.raises(ValueError, match="no time zone"):
        HOURLY.floor(datetime(2023, 12, 10, 12))


def test_closed_since_drops_the_candle_whose_interval_has_not_ended():
    day = grid_of(parse_market("upbit:ETH-KRW@1d"))
    candles = [make_candle(t, 1, 2, 1, 2, 5, where="t", grid=day) for t in (at(8, 0), at(9, 0), at(10, 0))]
    assert [c.open_time for c in closed_since(candles, at(8, 0), NOW, day.step)] == [at(9, 0)]


def test_make_candle_refuses_an_open_time_off_the_grid():
    day = grid_of(parse_market("bithumb:ETH-KRW@1d"))
    with pytest.raises(ExchangeError, match=r"^row 3: open_time 2023-12-09T00:00:00\+00:00 is not a candle start "
                                            r"\(every 1d from 15:00 UTC\)$"):
        make_candle(at(9, 0), 1, 2, 1, 2, 5, where="row 3", grid=day)
    with pytest.raises(ExchangeError, match=r"is not a candle start \(on the hour\)"):
        make_candle(at(9, 0, 15), 1, 2, 1, 2, 5, where="row 3")


def _day_row(utc: str) -> dict:
    return {"market": "KRW-ETH", "candle_date_time_utc": utc, "opening_price": 3000000.0, "high_price": 3100000.0,
            "low_price": 2900000.0, "trade_price": 3050000.0, "candle_acc_trade_volume": 12.5,
            "prev_closing_price": 3000000.0}


def test_a_utc_day_served_as_a_bithumb_day_fails_the_page():
    grid = grid_of(parse_market("bithumb:ETH-KRW@1d"))
    (ok,) = parse_v1_page([_day_row("2023-12-08T15:00:00")], code="KRW-ETH", where="p", grid=grid, unit=None)
    assert ok.open_time == at(8, 15)
    with pytest.raises(ExchangeError, match=r"^p row 1 \(2023-12-08T00:00Z\): open_time .* is not a candle start"):
        parse_v1_page([_day_row("2023-12-09T15:00:00"), _day_row("2023-12-08T00:00:00")], code="KRW-ETH",
                      where="p", grid=grid, unit=None)


def test_a_v1_page_of_another_unit_than_asked_fails():
    # A real Upbit 60-minute row (ccxt's recorded fixture, values as strings) asked for as 15-minute candles.
    body = json.loads((API_SAMPLES / "upbit_v1_candles_minutes_60_USDT-BTC__ccxt_static_fixture.json").read_text())
    grid = grid_of(parse_market("upbit:BTC-USDT@15m"))
    (hour,) = parse_v1_page(body, code="USDT-BTC", where="p", grid=grid_of(parse_market("upbit:BTC-USDT")), unit=60)
    assert hour.open_time == datetime(2024, 3, 13, 11, tzinfo=UTC) and grid.contains(hour.open_time)
    with pytest.raises(ExchangeError, match=r"^p row 0: unit '60', asked for 15-minute candles$"):
        parse_v1_page(body, code="USDT-BTC", where="p", grid=grid, unit=15)


def test_a_binance_kline_off_the_4h_grid_fails_the_page():
    grid = grid_of(parse_market("binance:ETH-USDT@4h"))
    ms = int(at(10, 2).timestamp() * 1000)
    row = [ms, "2200.1", "2210.0", "2190.0", "2205.0", "10.0", ms + 14_399_999, "0", 1, "0", "0", "0"]
    with pytest.raises(ExchangeError, match=r"row 0 \(2023-12-10T02:00Z\): .* \(every 4h from 00:00 UTC\)"):
        parse_klines([row], where="k", grid=grid)
