"""A back-fill must reach its requested start (FORECASTER_BACKFILL_DAYS back), or the exchange must
confirm that its data begins later; a history cut short is a failed run that the next run completes
(issue 21, item 1), on the test exchange."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from db.candles import load_frame
from db.models import Candle
from exchanges.base import ExchangeError, parse_market
from exchanges.http import make_session
from exchanges.registry import make_client
from jobs.ingest import ingest_market
from tests.helpers.fake_exchange import KRW_CSV, USDT_CSV, FakeExchange, load_csv_slice
from tests.helpers.services import services_for

UTC = timezone.utc
NOW = datetime(2023, 12, 10, 12, 30, tzinfo=UTC)
LAST_CLOSED = datetime(2023, 12, 10, 11, tzinfo=UTC)
KRW = load_csv_slice(KRW_CSV, "2023-11-01T00:00:00Z", 24 * 45)
USDT = load_csv_slice(USDT_CSV, "2023-11-01T00:00:00Z", 24 * 45)


def _client(fake, exchange):
    return make_client(exchange, fake.base_url(exchange), make_session(retries=1, backoff=0.01),
                       timeout=(1, 1), pause=0)


def _stored(sessions, market):
    with sessions() as s:
        return list(load_frame(session=s, market=replace(market, interval="1h")).index)


def _runs(sessions):
    with sessions() as s:
        return s.execute(sa.text("SELECT status, message FROM job_runs WHERE job='ingest' ORDER BY id")).all()


def _served(fake, market, since, until):
    return [c.open_time for c in fake.visible(market) if since < c.open_time <= until]


@pytest.mark.parametrize("market_text", ["upbit:ETH-KRW", "bithumb:ETH-KRW"])
def test_a_half_page_then_an_empty_page_fails_the_run_and_the_next_run_stores_every_candle(migrated, market_text):
    _, _, sessions = migrated
    market = parse_market(market_text)
    with FakeExchange({market_text: KRW}, now=NOW, bithumb_window=300) as fake:
        client = _client(fake, market.exchange)
        # The v1 pages of the back-fill: the first comes back half full, the next one empty.
        fake.fail_next("short", path_contains="/v1/")
        fake.fail_next("empty", path_contains="/v1/")
        with pytest.raises(ExchangeError, match="a cut-short answer or the market's first candles; asked again"):
            ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
        first_pass = _stored(sessions, market)
        assert _runs(sessions)[-1].status == "failed"
        ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
        want = _served(fake, market, LAST_CLOSED - timedelta(days=20), LAST_CLOSED)
    assert 0 < len(first_pass) < len(want)  # what the cut-short pass got was kept, not lost
    assert _stored(sessions, market) == want  # every candle, the oldest included
    assert _runs(sessions)[-1].status == "ok"


def test_a_market_listed_after_the_requested_start_is_confirmed_on_the_next_run_then_not_asked_again(migrated):
    _, _, sessions = migrated
    market = parse_market("upbit:ETH-KRW")
    listed = [c for c in KRW if c.open_time >= datetime(2023, 12, 5, tzinfo=UTC)]  # 5 days of a 20-day back-fill
    with FakeExchange({"upbit:ETH-KRW": listed}, now=NOW) as fake:
        client = _client(fake, "upbit")
        with pytest.raises(ExchangeError, match="stops at 2023-12-05T00:00Z"):
            ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
        ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)  # asked again: confirmed
        assert _runs(sessions)[-1].status == "ok"
        fake.reset_counts()
        fake.advance(1)
        ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW + timedelta(hours=1))
        assert fake.count("/upbit/") == 1  # the hourly request only: the start is settled
    assert [r.status for r in _runs(sessions)] == ["failed", "ok", "ok"]
    assert _stored(sessions, market)[0] == datetime(2023, 12, 5, tzinfo=UTC)


def test_binance_says_where_its_data_begins_so_a_later_listing_is_ok_at_once(migrated):
    _, _, sessions = migrated
    market = parse_market("binance:ETH-USDT")
    listed = [c for c in USDT if c.open_time >= datetime(2023, 12, 5, tzinfo=UTC)]
    with FakeExchange({"binance:ETH-USDT": listed}, now=NOW) as fake:
        ingest_market(services_for(migrated, _client(fake, "binance")), market, backfill_days=20, now=NOW)
    assert [r.status for r in _runs(sessions)] == ["ok"]


def test_history_lost_before_the_first_stored_candle_is_refilled_by_gap_repair(migrated):
    """What an older version's short back-fill left: the store begins days after the requested start."""
    _, _, sessions = migrated
    market = parse_market("upbit:ETH-KRW")
    with FakeExchange({"upbit:ETH-KRW": KRW}, now=NOW) as fake:
        client = _client(fake, "upbit")
        ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
        full = _stored(sessions, market)
        with sessions() as s, s.begin():
            s.execute(sa.delete(Candle).where(Candle.open_time < full[300].to_pydatetime()))
        ingest_market(services_for(migrated, client), market, backfill_days=20, now=NOW)
    assert _stored(sessions, market) == full
    assert "filled 300 missing hours" in _runs(sessions)[-1].message
