"""`forecaster ingest` through a real HTTP server on 127.0.0.1 serving real candles, into a SQLite
file and the real Postgres."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from db.candles import load_frame
from exchanges.base import ExchangeError, parse_market
from exchanges.http import make_session
from exchanges.registry import make_client
from jobs.ingest import ingest_market
from tests.cli import run_cli
from tests.fake_exchange import KRW_CSV, USDT_CSV, FakeExchange, load_csv_slice, retime

UTC = timezone.utc
NOW = datetime(2023, 12, 10, 12, 30, tzinfo=UTC)  # half past: the 12:00 candle is still open
KRW = load_csv_slice(KRW_CSV, "2023-11-01T00:00:00Z", 24 * 45)
USDT = load_csv_slice(USDT_CSV, "2023-11-01T00:00:00Z", 24 * 45)
MARKETS = {"bithumb:ETH-KRW": KRW, "upbit:ETH-KRW": KRW, "binance:ETH-USDT": USDT}


@pytest.fixture
def fake():
    with FakeExchange(MARKETS, now=NOW, bithumb_window=300, timeout_delay=1.0) as fx:
        yield fx


def _client(fake, exchange):
    # Fast retries so that fault tests take a second, not the production backoff.
    return make_client(exchange, fake.base_url(exchange), make_session(retries=2, backoff=0.01),
                       timeout=(1, 0.5), pause=0)


def _stored(sessions, market):
    with sessions() as s:
        return load_frame(session=s, exchange=market.exchange, symbol=market.symbol)


def _expected(candles, since, until):
    return [c for c in candles if since < c.open_time <= until]


@pytest.mark.parametrize("market_text", list(MARKETS))
def test_backfill_then_rerun_then_new_hours(migrated, fake, market_text):
    _, _, sessions = migrated
    market = parse_market(market_text)
    client = _client(fake, market.exchange)
    first = ingest_market(sessions, client, market, backfill_days=20, now=NOW)
    last_closed = datetime(2023, 12, 10, 11, tzinfo=UTC)
    want = _expected(MARKETS[market_text], last_closed - timedelta(days=20), last_closed)
    stored = _stored(sessions, market)
    assert first.new_rows == len(want) == len(stored)
    assert stored.index[-1] == last_closed  # the open 12:00 candle is not stored
    assert stored["close"].tolist() == [c.close for c in want]  # exact values, close is close
    assert stored["high"].tolist() == [c.high for c in want]
    again = ingest_market(sessions, client, market, backfill_days=20, now=NOW)
    assert again.new_rows == 0 and len(_stored(sessions, market)) == len(want)
    fake.advance(3)
    later = ingest_market(sessions, client, market, backfill_days=20, now=NOW + timedelta(hours=3))
    assert later.new_rows == 3 and later.newest == last_closed + timedelta(hours=3)


@pytest.mark.parametrize("fault, problem", [
    ("html", "HTTP 502 Bad Gateway"), ("500", "HTTP 500"), ("bithumb_5600", "status 5600"), ("bad_row", "low <= open"),
    ("timeout", "timed out"), ("garbage", "not JSON"),
])
def test_a_failed_fetch_leaves_the_store_as_it_was(migrated, fake, fault, problem):
    _, _, sessions = migrated
    market = parse_market("bithumb:ETH-KRW")
    client = _client(fake, "bithumb")
    ingest_market(sessions, client, market, backfill_days=5, now=NOW)
    before = _stored(sessions, market)
    fake.advance(5)
    fake.fail_next(fault, times=10)
    with pytest.raises(ExchangeError, match=problem):
        ingest_market(sessions, client, market, backfill_days=5, now=NOW + timedelta(hours=5))
    assert _stored(sessions, market).equals(before)
    with sessions() as s:
        row = s.execute(sa.text("SELECT status, message FROM job_runs ORDER BY id DESC")).first()
    assert row.status == "failed" and "bithumb" in row.message and problem in row.message


def test_gaps_in_the_exchange_data_are_reported(migrated, fake):
    _, _, sessions = migrated
    market = parse_market("upbit:ETH-KRW")
    # Upbit's real series misses 5 hours after 2023-12-03T15:00Z (exchange maintenance).
    ingest_market(sessions, _client(fake, "upbit"), market, backfill_days=20, now=NOW)
    with sessions() as s:
        message = s.execute(sa.text("SELECT message FROM job_runs WHERE job = 'ingest'")).scalar_one()
    assert "missing hours" in message and "5h after 2023-12-03T15Z" in message


def test_cli_ingest_against_the_fake_exchange_on_the_wall_clock(sqlite_url):
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    candles = retime(KRW[: 24 * 10], now)  # ends with the hour now open
    with FakeExchange({"bithumb:ETH-KRW": candles}, now=None) as fx:
        env = {"FORECASTER_DATABASE_URL": sqlite_url, **fx.env()}
        assert run_cli("db", "upgrade", env=env).returncode == 0
        result = run_cli("ingest", "--backfill-days", "3", env=env)
        assert result.returncode == 0, result.stderr
        assert "bithumb:ETH-KRW: 72 new candles" in result.stdout
        again = run_cli("ingest", env=env)
        assert "bithumb:ETH-KRW: 0 new candles" in again.stdout
        fx.fail_next("bithumb_5600", times=20)
        failed = run_cli("ingest", env=env)
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bithumb" in errors[0] and "status 5600: Please try again" in errors[0]
