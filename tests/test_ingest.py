"""`forecaster ingest` through a real HTTP server on 127.0.0.1 serving real candles, into a SQLite
file and the real Postgres."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from db.candles import load_frame
from db.models import Candle
from exchanges.base import ExchangeError, parse_market
from exchanges.http import make_session
from exchanges.registry import grid_of, make_client
from jobs.ingest import ingest_market
from tests.helpers.cli import run_cli
from tests.helpers.fake_exchange import KRW_CSV, USDT_CSV, FakeExchange, load_csv_slice, retime
from tests.helpers.services import services_for

UTC = timezone.utc
NOW = datetime(2023, 12, 10, 12, 30, tzinfo=UTC)  # half past: the 12:00 candle is still open
KRW = load_csv_slice(KRW_CSV, "2023-11-01T00:00:00Z", 24 * 45)
USDT = load_csv_slice(USDT_CSV, "2023-11-01T00:00:00Z", 24 * 45)
MARKETS = {"bithumb:ETH-KRW": KRW, "upbit:ETH-KRW": KRW, "binance:ETH-USDT": USDT}
HOUR_ = timedelta(hours=1)


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
        return load_frame(session=s, market=replace(market, interval="1h"))


def _expected(candles, since, until):
    return [c for c in candles if since < c.open_time <= until]


@pytest.mark.parametrize("market_text", list(MARKETS))
def test_backfill_then_rerun_then_new_hours(migrated, fake, market_text):
    _, _, sessions = migrated
    market = parse_market(market_text)
    client = _client(fake, market.exchange)
    first = ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
    last_closed = datetime(2023, 12, 10, 11, tzinfo=UTC)
    want = _expected(MARKETS[market_text], last_closed - timedelta(days=20), last_closed)
    stored = _stored(sessions, market)
    assert first.new_rows == len(want) == len(stored)
    assert stored.index[-1] == last_closed  # the open 12:00 candle is not stored
    assert stored["close"].tolist() == [c.close for c in want]  # exact values, close is close
    assert stored["high"].tolist() == [c.high for c in want]
    again = ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
    assert again.new_rows == 0 and len(_stored(sessions, market)) == len(want)
    fake.advance(3)
    later = ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW + timedelta(hours=3))
    assert later.new_rows == 3 and later.newest == last_closed + timedelta(hours=3)


@pytest.mark.parametrize("fault, problem", [
    ("html", "HTTP 502 Bad Gateway"), ("500", "HTTP 500"), ("bithumb_5600", "status 5600"), ("bad_row", "low <= open"),
    ("timeout", "timed out"), ("garbage", "not JSON"),
])
def test_a_failed_fetch_leaves_the_store_as_it_was(migrated, fake, fault, problem):
    _, _, sessions = migrated
    market = parse_market("bithumb:ETH-KRW")
    client = _client(fake, "bithumb")
    ingest_market(services_for(migrated, client), market, backfill_days=5, now=NOW)
    before = _stored(sessions, market)
    fake.advance(5)
    fake.fail_next(fault, times=10)
    with pytest.raises(ExchangeError, match=problem):
        ingest_market(services_for(migrated, client), market, backfill_days=5, now=NOW + timedelta(hours=5))
    assert _stored(sessions, market).equals(before)
    with sessions() as s:
        row = s.execute(sa.text("SELECT status, message FROM job_runs ORDER BY id DESC")).first()
    assert row.status == "failed" and "bithumb" in row.message and problem in row.message


def test_gaps_in_the_exchange_data_are_reported(migrated, fake):
    _, _, sessions = migrated
    market = parse_market("upbit:ETH-KRW")
    # Upbit's real series misses 5 hours after 2023-12-03T15:00Z (exchange maintenance).
    ingest_market(services_for(migrated, _client(fake, "upbit")), market, backfill_days=20, now=NOW)
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
        # the same reach: a longer one asks for the older hours, which these 10 days of data lack
        again = run_cli("ingest", "--backfill-days", "3", env=env)
        assert "bithumb:ETH-KRW: 0 new candles" in again.stdout
        fx.fail_next("bithumb_5600", times=20)
        failed = run_cli("ingest", "--backfill-days", "3", env=env)
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bithumb" in errors[0] and "status 5600: Please try again" in errors[0]


def _last_run(sessions):
    with sessions() as s:
        return s.execute(sa.text("SELECT status, rows, message FROM job_runs ORDER BY id DESC")).first()


def _served(fake, market, since, until):
    return [c.open_time for c in fake.visible(market) if since < c.open_time <= until]


def test_an_empty_page_in_the_middle_of_a_backfill_is_a_failed_fetch_not_a_short_history(migrated, fake):
    _, _, sessions = migrated
    market = parse_market("upbit:ETH-KRW")
    client = _client(fake, "upbit")
    fake.fail_next("empty", path_contains="/upbit/", after=1)  # 480 hours: pages of 200, 200, 80; the 2nd is empty
    with pytest.raises(ExchangeError, match="empty page .* right after a full page of 200: a failed fetch"):
        ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
    assert _stored(sessions, market).empty and _last_run(sessions).status == "failed"
    fake.advance(1)  # the next run gets the whole history
    ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW + timedelta(hours=1))
    last_closed = datetime(2023, 12, 10, 12, tzinfo=UTC)
    assert list(_stored(sessions, market).index) == _served(fake, market, last_closed - timedelta(days=20), last_closed)


@pytest.mark.parametrize("empty_page", [1, 2])
def test_an_empty_page_between_the_store_and_the_exchanges_window_is_a_failed_fetch(migrated, fake, empty_page):
    """Bithumb after 600 h of downtime: the public window holds the newest 300 hours, the v1 pages
    must bring the 302 before it; an empty v1 page left a hole in the middle that nothing refilled."""
    _, _, sessions = migrated
    market = parse_market("bithumb:ETH-KRW")
    client = _client(fake, "bithumb")
    fake.now = NOW - timedelta(hours=600)
    ingest_market(services_for(migrated, client), market, backfill_days=5, now=fake.now)
    first = _stored(sessions, market).index
    fake.now = NOW
    fake.fail_next("empty", path_contains="/v1/", after=empty_page - 1)
    with pytest.raises(ExchangeError, match="although the store holds candles at"):
        ingest_market(services_for(migrated, client), market, backfill_days=5, now=NOW)
    assert list(_stored(sessions, market).index) == list(first)  # nothing half-written
    ingest_market(services_for(migrated, client), market, backfill_days=5, now=NOW)
    assert list(_stored(sessions, market).index) == _served(fake, market, first[0] - HOUR_, NOW - HOUR_)


def test_an_empty_answer_where_hours_are_due_is_a_failure_not_ok_fetched_0(migrated, fake):
    _, _, sessions = migrated
    market = parse_market("binance:ETH-USDT")
    client = _client(fake, "binance")
    ingest_market(services_for(migrated, client), market, backfill_days=5, now=NOW)
    fake.advance(2)
    fake.fail_next("empty", path_contains="/binance/")
    with pytest.raises(ExchangeError, match="no candles at all .* 4 closed hours were due .*: an empty answer"):
        ingest_market(services_for(migrated, client), market, backfill_days=5, now=NOW + timedelta(hours=2))
    assert _last_run(sessions).status == "failed"


def test_a_hole_in_the_stored_candles_is_refilled_by_the_next_ingest(migrated, fake):
    _, _, sessions = migrated
    market = parse_market("binance:ETH-USDT")
    client = _client(fake, "binance")
    ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
    full = list(_stored(sessions, market).index)
    hole = (datetime(2023, 11, 25, 3, tzinfo=UTC), datetime(2023, 11, 27, 8, tzinfo=UTC))  # 54 hours
    with sessions() as s, s.begin():  # what an older version's short back-fill or a lost page left
        s.execute(sa.delete(Candle).where(Candle.open_time >= hole[0], Candle.open_time <= hole[1]))
    fake.reset_counts()
    result = ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
    assert list(_stored(sessions, market).index) == full
    run = _last_run(sessions)
    assert run.status == "ok" and result.new_rows == 54 and run.rows == 54
    assert "filled 54 missing hours in 1 gaps" in run.message
    assert fake.count("/binance/") == 2  # the hourly request, and one for the hole


def test_hours_the_exchange_lacks_are_asked_for_until_confirmed_then_never_again(migrated, fake):
    _, _, sessions = migrated
    market = parse_market("upbit:ETH-KRW")
    client = _client(fake, "upbit")
    # Upbit's real series misses 5 hours after 2023-12-03T15:00Z: the back-fill asks for them once...
    ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
    assert "5 missing hours in 1 gaps" in _last_run(sessions).message
    # ...the next ingest asks once more: a week old and lacking twice, they are confirmed...
    fake.reset_counts()
    ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
    second = _last_run(sessions).message
    assert "the exchange lacks 5 missing hours in 1 gaps (largest: 5h after 2023-12-03T15Z); " \
           "1 of them confirmed now" in second, second
    assert fake.count("/upbit/") == 2
    # ...and from then on only the hourly request is made.
    fake.reset_counts()
    for hour in range(3):
        fake.advance(1)
        ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW + timedelta(hours=hour + 1))
        assert "missing" not in _last_run(sessions).message
    assert fake.count("/upbit/") == 3
    with sessions() as s:
        gap = s.execute(sa.text("SELECT first_missing, hours, checks, confirmed_at FROM candle_gaps")).one()
    assert gap.hours == 5 and gap.checks == 2 and gap.confirmed_at is not None


def test_a_recent_gap_is_asked_for_again_until_it_is_a_day_old(migrated, fake):
    _, _, sessions = migrated
    market = parse_market("binance:ETH-USDT")
    client = _client(fake, "binance")
    ingest_market(services_for(migrated, client), market, backfill_days=5, now=NOW)
    series = fake.visible(market)
    missing = {datetime(2023, 12, 10, 13, tzinfo=UTC), datetime(2023, 12, 10, 14, tzinfo=UTC)}
    fake.set_candles(market, [c for c in series if c.open_time not in missing]
                     + load_csv_slice(USDT_CSV, "2023-12-10T15:00:00Z", 48))  # the exchange is late with 13, 14
    for hours_later in (4, 5, 6):
        fake.now = NOW + timedelta(hours=hours_later)
        ingest_market(services_for(migrated, client), market, backfill_days=5, now=fake.now)
    with sessions() as s:
        assert s.execute(sa.text("SELECT checks, confirmed_at FROM candle_gaps")).one() == (3, None)
    fake.set_candles(market, series + load_csv_slice(USDT_CSV, "2023-12-10T13:00:00Z", 50))  # published late
    fake.now = NOW + timedelta(hours=7)
    ingest_market(services_for(migrated, client), market, backfill_days=5, now=fake.now)
    assert "filled 2 missing hours" in _last_run(sessions).message
    assert set(_stored(sessions, market).index) >= missing


@pytest.mark.parametrize("market_text", ["bithumb:ETH-KRW@1d", "upbit:ETH-KRW@4h", "binance:ETH-USDT@15m",
                                         "bithumb:ETH-KRW@5m", "upbit:ETH-KRW@5m", "binance:ETH-USDT@5m"])
def test_each_interval_is_ingested_as_its_own_market_next_to_the_hourly_one(migrated, market_text):
    """Day, 4h, 15m and 5m candles served in each exchange's format and grid, ingested beside the same
    symbol's hours: each interval keeps its own rows, stored as the exchange starts them."""
    from tests.helpers.candle_data import candles_for
    _, _, sessions = migrated
    market = parse_market(market_text)
    hourly_text = f"{market.exchange}:{market.symbol}"
    served = candles_for(market, MARKETS[hourly_text])
    with FakeExchange({hourly_text: MARKETS[hourly_text], market_text: served}, now=NOW,
                      bithumb_window=300) as fx:
        client = _client(fx, market.exchange)
        hours = ingest_market(services_for(migrated, client), parse_market(hourly_text), backfill_days=20, now=NOW)
        first = ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
        again = ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
    step = market.period.step
    want = [c for c in served if NOW - timedelta(days=20) - step < c.open_time and c.open_time + step <= NOW]
    with sessions() as s:
        stored = load_frame(session=s, market=market)
        hourly = load_frame(session=s, market=replace(market, interval="1h"))
    assert first.new_rows == len(want) == len(stored) and again.new_rows == 0
    assert stored.index.tolist() == [c.open_time for c in want]
    assert stored["close"].tolist() == pytest.approx([c.close for c in want], rel=1e-12)
    assert all(grid_of(market).contains(t.to_pydatetime()) for t in stored.index)  # e.g. Bithumb days at 15:00 UTC
    shorter = market.period.step < timedelta(hours=1)
    assert len(hourly) == hours.new_rows > len(stored) if not shorter else len(hourly) < len(stored)
