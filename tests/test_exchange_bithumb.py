"""BithumbClient against the fake server with real ETH/KRW rows: column order, back-fill, open candle."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from core.grid import HOUR
from exchanges.base import ExchangeError, parse_market
from exchanges.bithumb import BithumbClient, parse_public
from exchanges.http import make_session
from tests.helpers.fake_exchange import DATA_DIR, KRW_CSV, FakeExchange, load_csv_slice

MARKET = parse_market("bithumb:ETH-KRW")
NOW = datetime(2023, 12, 10, 12, 30, tzinfo=timezone.utc)
PUBLIC = "/public/candlestick/ETH_KRW/1h"
V1 = "/v1/candles/minutes/60"


@pytest.fixture(scope="module")
def candles():
    # 2023-10-15 .. 2023-12-14: holds Upbit's real 5-hour gap of 2023-12-03 15Z..21Z.
    return load_csv_slice(KRW_CSV, "2023-10-15T00:00:00Z", 24 * 60)


@pytest.fixture
def fake(candles):
    with FakeExchange({str(MARKET): candles}, now=NOW, bithumb_window=100) as fx:
        yield fx


@pytest.fixture
def client(fake):
    return BithumbClient(fake.base_url("bithumb"), make_session(retries=2, backoff=0.01), timeout=(1, 2), pause=0)


def closed(candles, since, now):
    return [c for c in candles if (since is None or c.open_time > since) and c.open_time + HOUR <= now]


def test_recorded_bithumb_row_is_open_close_high_low():
    # A real Bithumb body (ccxt's fixture): [ms, open, CLOSE, HIGH, LOW, volume].
    body = json.loads((DATA_DIR / "api_samples" / "bithumb_public_candlestick_BTC_KRW_1m__ccxt_static_fixture.json")
                      .read_text())
    body["data"][0][0] -= body["data"][0][0] % 3_600_000  # a 1m sample; make_candle wants an hour start
    (c,) = parse_public(body, where="sample")
    assert (c.open, c.high, c.low, c.close, c.volume) == (81061000, 81062000, 80860000, 80860000, 2.1630537)


def test_latest_window_round_trips_the_csv_values_exactly(client, candles):
    got = client.fetch(MARKET, None, NOW)
    visible = [c for c in candles if c.open_time <= NOW][-100:]
    assert got == closed(visible, None, NOW) and len(got) == 99  # the 100th is the open candle
    # The series has hours whose close differs from the high: reading rows as OHLC would fail above.
    assert sum(c.close != c.high for c in got) > 50


def test_open_candle_is_skipped_then_served_closed(client, fake, candles):
    by_time = {c.open_time: c for c in candles}
    got = client.fetch(MARKET, NOW - timedelta(hours=3), NOW)
    assert [c.open_time for c in got] == [datetime(2023, 12, 10, h, tzinfo=timezone.utc) for h in (10, 11)]
    fake.now = datetime(2023, 12, 10, 13, tzinfo=timezone.utc)  # 12:00 has just closed; 13:00 opens
    (new,) = client.fetch(MARKET, got[-1].open_time, fake.now)
    assert new == by_time[datetime(2023, 12, 10, 12, tzinfo=timezone.utc)]  # final values, not the partial ones


def test_since_inside_the_window_needs_one_request(client, fake, candles):
    since = NOW - timedelta(hours=30, minutes=30)
    assert client.fetch(MARKET, since, NOW) == closed(candles, since, NOW)
    assert fake.count() == 1


def test_backfill_of_30_days_pages_v1_without_gaps_or_duplicates(client, fake, candles):
    since = NOW - timedelta(days=30)
    got = client.fetch(MARKET, since, NOW)
    assert got == closed(candles, since, NOW)  # same hours, same values, the real 5-hour gap kept
    assert max(b.open_time - a.open_time for a, b in zip(got, got[1:])) == timedelta(hours=6)
    v1_calls = [q for path, q in fake.log if path.endswith(V1)]
    assert len(v1_calls) == 4 and fake.count(PUBLIC) == 1
    assert all(q["market"] == "KRW-ETH" and q["count"] == "200" for q in v1_calls)
    # `to` is naive KST: the first page ends where the public window (oldest 2023-12-06 09Z) begins.
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", q["to"]) for q in v1_calls)
    window_start = [c for c in candles if c.open_time <= NOW][-100].open_time
    assert v1_calls[0]["to"] == f"{window_start + timedelta(hours=9):%Y-%m-%d %H:%M:%S}"


def test_backfill_stops_at_the_first_empty_page(client, fake, candles):
    got = client.fetch(MARKET, candles[0].open_time - timedelta(days=400), NOW)
    assert got == closed(candles, None, NOW)
    assert fake.log[-1][0].endswith(V1)  # the last request found nothing older


def test_status_5600_is_an_error_with_its_message(client, fake):
    fake.fail_next("bithumb_5600")
    with pytest.raises(ExchangeError, match=rf"^bithumb {PUBLIC}: status 5600: Please try again$"):
        client.fetch(MARKET, None, NOW)


def test_unknown_market_reports_bithumb_status(client):
    with pytest.raises(ExchangeError, match=r"bithumb /public/candlestick/XYZ_KRW/1h: status 5500: Invalid Parameter"):
        client.fetch(parse_market("bithumb:XYZ-KRW"), None, NOW)


def test_bad_row_on_a_backfill_page_fails_the_whole_fetch(client, fake):
    fake.fail_next("bad_row", path_contains=V1)
    with pytest.raises(ExchangeError, match=rf"^bithumb {V1} KRW-ETH \(to=.* KST\) row 99 \(.*\): prices break low <= open"):
        client.fetch(MARKET, NOW - timedelta(days=30), NOW)


def test_v1_error_object_names_the_v1_endpoint(client, fake):
    fake.fail_next("500", times=99, path_contains=V1)
    with pytest.raises(ExchangeError, match=rf"^bithumb {V1} KRW-ETH: HTTP 500 Internal Server Error after 3 tries"):
        client.fetch(MARKET, NOW - timedelta(days=30), NOW)
