"""The fake exchange itself behaves like the real ones where tests rely on it, in-process and as a subprocess."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from core.grid import HOUR, utc_hour_floor
from exchanges.base import parse_market
from exchanges.binance import BinanceClient
from exchanges.http import make_session
from exchanges.upbit import UpbitClient
from tests.helpers.candle_data import candles_for
from tests.helpers.fake_exchange import KRW_CSV, USDT_CSV, FakeExchange, load_csv_slice, retime

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2023, 12, 10, 12, 30, tzinfo=timezone.utc)


def test_the_current_hour_is_served_as_an_open_candle_with_partial_values():
    candles = load_csv_slice(KRW_CSV, "2023-12-10T00:00:00Z", 24)
    final = next(c for c in candles if c.open_time == utc_hour_floor(NOW))
    with FakeExchange({"bithumb:ETH-KRW": candles}, now=NOW) as fake:
        body = requests.get(fake.base_url("bithumb") + "/public/candlestick/ETH_KRW/1h", timeout=5).json()
    ms, open_, close, high, low, volume = body["data"][-1]
    assert ms == int(final.open_time.timestamp() * 1000) and len(body["data"]) == 13
    assert float(open_) == final.open and float(volume) == final.volume / 2  # half the hour has passed
    assert float(low) <= float(close) <= float(high) and float(close) != final.close


def test_retimed_data_follows_the_wall_clock():
    now = datetime.now(timezone.utc)
    candles = retime(load_csv_slice(KRW_CSV, "2023-12-01T00:00:00Z", 48), utc_hour_floor(now))
    with FakeExchange({"upbit:ETH-KRW": candles}) as fake:  # now=None: the real clock
        got = UpbitClient(fake.base_url("upbit"), make_session(), pause=0).fetch(
            parse_market("upbit:ETH-KRW"), now - timedelta(hours=5), now)
    assert [c.open_time for c in got] == [utc_hour_floor(now) - HOUR * k for k in range(4, 0, -1)]


def test_command_line_server_with_remote_clock_and_faults():
    now = datetime(2023, 12, 1, 12, 30, tzinfo=timezone.utc)
    args = [sys.executable, "-m", "tests.helpers.fake_exchange", "--serve", f"upbit:ETH-KRW={KRW_CSV}",
            "--start", "2023-12-01T00:00:00Z", "--hours", "48", "--now", now.isoformat()]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("FAKE_EXCHANGE_URL http://127.0.0.1:")
        url = line.split()[1]
        client = UpbitClient(url + "/upbit", make_session(retries=2, backoff=0.01), pause=0)
        market = parse_market("upbit:ETH-KRW")
        assert client.fetch(market, None, now)[-1].open_time == datetime(2023, 12, 1, 11, tzinfo=timezone.utc)

        requests.get(url + "/_control/fail", params={"kind": "500", "times": 2}, timeout=5)
        state = requests.get(url + "/_control/advance", params={"hours": 1}, timeout=5).json()
        assert state["now"] == (now + HOUR).isoformat()
        (new,) = client.fetch(market, datetime(2023, 12, 1, 11, tzinfo=timezone.utc), now + HOUR)
        assert new.open_time == datetime(2023, 12, 1, 12, tzinfo=timezone.utc)
        counts = requests.get(url + "/_control/state", timeout=5).json()["counts"]
        assert counts == {"/upbit/v1/candles/minutes/60": 4}  # 1, then 2 failures + 1 success
    finally:
        proc.terminate()
        proc.wait(5)


# ---- other intervals: each exchange's own format and grid

DAYS = candles_for("upbit:ETH-KRW@1d", load_csv_slice(KRW_CSV, "2023-11-01T00:00:00Z", 24 * 45))


def test_v1_day_rows_carry_the_change_since_the_day_before_and_no_unit():
    with FakeExchange({"upbit:ETH-KRW@1d": DAYS}, now=NOW) as fake:
        rows = requests.get(fake.base_url("upbit") + "/v1/candles/days", timeout=5,
                            params={"market": "KRW-ETH", "count": 3, "to": "2023-12-10T00:00:00Z"}).json()
    by_time = {c.open_time: c for c in DAYS}
    assert [r["candle_date_time_utc"] for r in rows] == ["2023-12-09T00:00:00", "2023-12-08T00:00:00",
                                                         "2023-12-07T00:00:00"]  # newest first, `to` exclusive
    assert rows[0]["candle_date_time_kst"] == "2023-12-09T09:00:00" and "unit" not in rows[0]
    assert rows[0]["prev_closing_price"] == by_time[datetime(2023, 12, 8, tzinfo=timezone.utc)].close
    assert rows[0]["change_price"] == rows[0]["trade_price"] - rows[0]["prev_closing_price"]


def test_bithumb_v1_days_open_at_midnight_kst_and_read_to_as_kst():
    hourly = load_csv_slice(KRW_CSV, "2023-11-01T00:00:00Z", 24 * 45)
    with FakeExchange({"bithumb:ETH-KRW@1d": candles_for("bithumb:ETH-KRW@1d", hourly),
                       "bithumb:ETH-KRW@4h": candles_for("bithumb:ETH-KRW@4h", hourly)}, now=NOW) as fake:
        days = requests.get(fake.base_url("bithumb") + "/v1/candles/days", timeout=5,
                            params={"market": "KRW-ETH", "count": 2, "to": "2023-12-10 00:00:00"}).json()
        blocks = requests.get(fake.base_url("bithumb") + "/v1/candles/minutes/240", timeout=5,
                              params={"market": "KRW-ETH", "count": 6}).json()
    assert [d["candle_date_time_kst"] for d in days] == ["2023-12-09T00:00:00", "2023-12-08T00:00:00"]
    assert [d["candle_date_time_utc"] for d in days] == ["2023-12-08T15:00:00", "2023-12-07T15:00:00"]
    # 12:30Z is 21:30 KST: the open block began at 20:00 KST (11:00Z); the newest row is that open one.
    assert [b["candle_date_time_kst"][11:16] for b in blocks] == ["20:00", "16:00", "12:00", "08:00", "04:00", "00:00"]
    assert {b["unit"] for b in blocks} == {240}


def test_binance_klines_of_a_day_close_a_millisecond_before_the_next_day():
    usdt = load_csv_slice(USDT_CSV, "2023-12-01T00:00:00Z", 24 * 5)
    with FakeExchange({"binance:ETH-USDT@1d": candles_for("binance:ETH-USDT@1d", usdt),
                       "binance:ETH-USDT@15m": candles_for("binance:ETH-USDT@15m", usdt)}, now=NOW) as fake:
        get = lambda **q: requests.get(fake.base_url("binance") + "/api/v3/klines", timeout=5,  # noqa: E731
                                       params={"symbol": "ETHUSDT", **q})
        days, quarters, hours = get(interval="1d").json(), get(interval="15m", limit=2).json(), get(interval="1h")
    assert [(k[0], k[6] - k[0]) for k in days] == [(int(datetime(2023, 12, d, tzinfo=timezone.utc).timestamp() * 1000),
                                                    86_400_000 - 1) for d in range(1, 6)]
    assert [k[6] - k[0] for k in quarters] == [900_000 - 1] * 2
    assert hours.status_code == 400 and hours.json()["msg"] == "the test exchange holds no 1h klines of ETHUSDT"


def test_the_open_day_is_served_with_the_share_of_the_day_gone_by():
    with FakeExchange({"upbit:ETH-KRW@1d": DAYS}, now=NOW) as fake:
        (open_day,) = requests.get(fake.base_url("upbit") + "/v1/candles/days", timeout=5,
                                   params={"market": "KRW-ETH", "count": 1}).json()
    final = next(c for c in DAYS if c.open_time == datetime(2023, 12, 10, tzinfo=timezone.utc))
    assert open_day["candle_date_time_utc"] == "2023-12-10T00:00:00"
    assert open_day["candle_acc_trade_volume"] == pytest.approx(final.volume * 12.5 / 24)


def test_candles_off_the_exchanges_grid_are_refused():
    utc_days = candles_for("upbit:ETH-KRW@1d", load_csv_slice(KRW_CSV, "2023-12-01T00:00:00Z", 24 * 5))
    with pytest.raises(ValueError, match=r"bithumb:ETH-KRW@1d: a candle opens at 2023-12-01T00:00Z, off bithumb's 1d "
                                         r"grid \(every 1d from 15:00 UTC\)"):
        FakeExchange({"bithumb:ETH-KRW@1d": utc_days}).close()


def test_command_line_server_serves_a_4h_market_from_an_hourly_csv():
    now = datetime(2023, 12, 5, 12, 30, tzinfo=timezone.utc)
    args = [sys.executable, "-m", "tests.helpers.fake_exchange", "--serve", f"binance:ETH-USDT@4h={USDT_CSV}",
            "--start", "2023-12-01T00:00:00Z", "--hours", "120", "--now", now.isoformat()]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[1]
        got = BinanceClient(url + "/binance", make_session(retries=2, backoff=0.01)).fetch(
            parse_market("binance:ETH-USDT@4h"), None, now)
    finally:
        proc.terminate()
        proc.wait(5)
    assert got[0].open_time == datetime(2023, 12, 1, tzinfo=timezone.utc)
    assert got[-1].open_time == datetime(2023, 12, 5, 8, tzinfo=timezone.utc)  # 12:00 is still open at 12:30
    assert len(got) == 4 * 6 + 3
