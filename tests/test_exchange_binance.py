"""BinanceClient against the fake server with real ETH/USDT rows: forward paging, open candle, errors."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.grid import HOUR
from exchanges.base import ExchangeError, parse_market
from exchanges.binance import BinanceClient
from exchanges.http import make_session
from tests.helpers.fake_exchange import USDT_CSV, FakeExchange, load_csv_slice

MARKET = parse_market("binance:ETH-USDT")
NOW = datetime(2023, 12, 10, 12, 30, tzinfo=timezone.utc)
KLINES = "/api/v3/klines"


@pytest.fixture(scope="module")
def candles():
    # 2023-03-01 .. 2023-12-15: holds Binance's real one-hour outage of 2023-03-24 (see tests/data/README.md).
    return load_csv_slice(USDT_CSV, "2023-03-01T00:00:00Z", 24 * 290)


@pytest.fixture
def fake(candles):
    with FakeExchange({str(MARKET): candles}, now=NOW) as fx:
        yield fx


def make(fake, **kw):
    return BinanceClient(fake.base_url("binance"), make_session(retries=2, backoff=0.01), timeout=(1, 2), **kw)


def closed(candles, since, now):
    return [c for c in candles if (since is None or c.open_time > since) and c.open_time + HOUR <= now]


def test_latest_page_round_trips_the_csv_values_exactly(fake, candles):
    got = make(fake).fetch(MARKET, None, NOW)
    assert got == closed(candles, None, NOW)[-999:]  # 1000 rows, the newest of which is still open
    assert fake.count() == 1


def test_pages_forward_from_since_without_gaps_or_duplicates(fake, candles):
    since = NOW - timedelta(days=30)
    got = make(fake, limit=100).fetch(MARKET, since, NOW)
    assert got == closed(candles, since, NOW) and len(got) == 719
    starts = [int(q["startTime"]) for _, q in fake.log]
    assert starts[0] == int((since + timedelta(minutes=30)).timestamp() * 1000)  # since + 1h, on the hour
    assert all(b - a == 100 * 3_600_000 for a, b in zip(starts, starts[1:]))  # no gaps in this span
    assert len(starts) == 8  # stops once the next candle would still be open


def test_long_backfill_across_a_real_outage(fake, candles):
    since = datetime(2023, 3, 1, tzinfo=timezone.utc)
    got = make(fake).fetch(MARKET, since, NOW)
    assert got == closed(candles, since, NOW)
    assert max(b.open_time - a.open_time for a, b in zip(got, got[1:])) == 2 * HOUR
    assert fake.count() == 7


def test_open_candle_is_skipped(fake, candles):
    got = make(fake).fetch(MARKET, NOW - timedelta(hours=3), NOW)
    assert [c.open_time.hour for c in got] == [10, 11]
    fake.advance(1)  # 13:30: 12:00 has closed
    (new,) = make(fake).fetch(MARKET, got[-1].open_time, fake.now)
    assert new == next(c for c in candles if c.open_time == datetime(2023, 12, 10, 12, tzinfo=timezone.utc))


def test_up_to_date_since_asks_nothing(fake):
    assert make(fake).fetch(MARKET, datetime(2023, 12, 10, 11, tzinfo=timezone.utc), NOW) == []
    assert fake.count() == 0


def test_invalid_symbol_quotes_binances_error():
    with FakeExchange(now=NOW) as empty:
        with pytest.raises(ExchangeError, match=rf"^binance {KLINES} ETHUSDT: HTTP 400 Bad Request: error -1121: Invalid symbol\.$"):
            make(empty).fetch(MARKET, None, NOW)


def test_bad_row_on_a_later_page_fails_the_whole_fetch(fake):
    fake.fail_next("bad_row", after=3)
    with pytest.raises(ExchangeError, match=rf"^binance {KLINES} ETHUSDT \(startTime=.*\) row 50 \(.*\): prices break"):
        make(fake, limit=100).fetch(MARKET, NOW - timedelta(days=30), NOW)
