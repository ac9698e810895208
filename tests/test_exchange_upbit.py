"""UpbitClient against the fake server with real ETH/KRW rows: backward paging, open candle, errors."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.grid import HOUR
from exchanges.base import ExchangeError, parse_market
from exchanges.http import make_session
from exchanges.upbit import UpbitClient
from tests.helpers.fake_exchange import KRW_CSV, FakeExchange, load_csv_slice

MARKET = parse_market("upbit:ETH-KRW")
NOW = datetime(2023, 12, 10, 12, 30, tzinfo=timezone.utc)
V1 = "/v1/candles/minutes/60"


@pytest.fixture(scope="module")
def candles():
    return load_csv_slice(KRW_CSV, "2023-10-15T00:00:00Z", 24 * 60)


@pytest.fixture
def fake(candles):
    with FakeExchange({str(MARKET): candles}, now=NOW) as fx:
        yield fx


@pytest.fixture
def client(fake):
    return UpbitClient(fake.base_url("upbit"), make_session(retries=2, backoff=0.01), timeout=(1, 2), pause=0)


def closed(candles, since, now):
    return [c for c in candles if (since is None or c.open_time > since) and c.open_time + HOUR <= now]


def test_latest_page_round_trips_the_csv_values_exactly(client, fake, candles):
    got = client.fetch(MARKET, None, NOW)
    assert got == closed(candles, None, NOW)[-200:]
    assert fake.count() == 1


def test_backfill_of_30_days_pages_back_without_gaps_or_duplicates(client, fake, candles):
    since = NOW - timedelta(days=30)
    got = client.fetch(MARKET, since, NOW)
    assert got == closed(candles, since, NOW)
    assert len({c.open_time for c in got}) == len(got) == 714  # 720 hours less Upbit's real 6 missing
    tos = [q["to"] for _, q in fake.log]
    assert tos[0] == "2023-12-10T12:00:00Z"  # the open 12:00 candle is never even asked for
    # each page ends where the previous one began (`to` is exclusive)
    for to, nxt in zip(tos, tos[1:]):
        assert datetime.fromisoformat(nxt) < datetime.fromisoformat(to)
    assert len(tos) == 4


def test_open_candle_is_skipped(client, fake, candles):
    fake.now = datetime(2023, 12, 10, 13, 0, tzinfo=timezone.utc)  # exactly on the hour: 13:00 has just opened
    got = client.fetch(MARKET, NOW - timedelta(hours=3), fake.now)
    assert [c.open_time.hour for c in got] == [10, 11, 12]
    assert got[-1] == next(c for c in candles if c.open_time == got[-1].open_time)


def test_since_filters_and_stops_after_one_page(client, fake, candles):
    since = datetime(2023, 12, 9, 23, tzinfo=timezone.utc)
    got = client.fetch(MARKET, since, NOW)
    assert got == closed(candles, since, NOW) and got[0].open_time == since + HOUR
    assert fake.count() == 1


def test_backfill_stops_at_the_first_empty_page(client, fake, candles):
    got = client.fetch(MARKET, datetime(2020, 1, 1, tzinfo=timezone.utc), NOW)
    assert got == closed(candles, None, NOW)


def test_unknown_market_quotes_upbits_error_object(client):
    with pytest.raises(ExchangeError, match=rf"^upbit {V1} KRW-NOPE: HTTP 404 Not Found: error 404: Code not found$"):
        client.fetch(parse_market("upbit:NOPE-KRW"), None, NOW)


def test_bad_row_on_a_later_page_fails_the_whole_fetch(client, fake):
    fake.fail_next("bad_row", path_contains=V1, after=2)  # pages 1 and 2 are fine, page 3 is not
    with pytest.raises(ExchangeError, match=rf"^upbit {V1} KRW-ETH \(to=2023-11-2\dT\d\d:00:00Z\) row 99 \(.*\): prices break"):
        client.fetch(MARKET, NOW - timedelta(days=30), NOW)
    assert fake.count() == 3
