"""The fake exchange itself behaves like the real ones where tests rely on it, in-process and as a subprocess."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from exchanges.base import HOUR, parse_market, utc_hour_floor
from exchanges.http import make_session
from exchanges.upbit import UpbitClient
from tests.fake_exchange import KRW_CSV, FakeExchange, load_csv_slice, retime

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
    args = [sys.executable, "-m", "tests.fake_exchange", "--serve", f"upbit:ETH-KRW={KRW_CSV}",
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
