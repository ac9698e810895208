"""Every client fetches 5-minute, 15-minute, 4-hour and day candles natively from the test exchange, in each
exchange's format and on its grid (Bithumb's day from 00:00 KST = 15:00 UTC; Upbit's and Binance's
from 00:00 UTC), paging without gaps or duplicates, dropping the open candle, and failing the whole
fetch on a bad row or a page that ends the history too early.

The served 4h/1d candles are the real 2023 hours regrouped, and the 15m and 5m ones synthetic parts of
the real hours (tests/helpers/candle_data.py: test data only; the clients never resample).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from exchanges.base import ExchangeError, parse_market
from exchanges.http import make_session
from exchanges.registry import grid_of, make_client
from tests.helpers.candle_data import candles_for
from tests.helpers.fake_exchange import KRW_CSV, USDT_CSV, FakeExchange, load_csv_slice

UTC = timezone.utc
NOW = datetime(2023, 12, 10, 12, 30, tzinfo=UTC)  # a Sunday; 21:30 KST
SYMBOLS = {"bithumb": "ETH-KRW", "upbit": "ETH-KRW", "binance": "ETH-USDT"}
INTERVALS = ("5m", "15m", "4h", "1d")
MARKETS = [f"{ex}:{sym}@{iv}" for ex, sym in SYMBOLS.items() for iv in INTERVALS]
# How far back a back-fill goes: several pages of each exchange (v1: 200 a page; Binance here: 100).
SPANS = {"5m": timedelta(days=2), "15m": timedelta(days=6), "4h": timedelta(days=90), "1d": timedelta(days=300)}
PAGED = {"bithumb": "/v1/candles/", "upbit": "/v1/candles/", "binance": "/api/v3/klines"}
BINANCE_LIMIT = 100


@pytest.fixture(scope="module")
def series():
    # The whole of 2023 for 4h and 1d; the last 20 days for 15m and 5m (four and twelve parts an hour).
    krw, usdt = load_csv_slice(KRW_CSV, "2023-01-01T00:00:00Z"), load_csv_slice(USDT_CSV, "2023-01-01T00:00:00Z")
    recent = datetime(2023, 11, 20, tzinfo=UTC)
    out = {}
    for text in MARKETS:
        hourly = usdt if text.startswith("binance") else krw
        if text.endswith(("@15m", "@5m")):
            hourly = [c for c in hourly if c.open_time >= recent]
        out[text] = candles_for(text, hourly)
    return out


@pytest.fixture
def fake(series):
    with FakeExchange(series, now=NOW) as fx:
        yield fx


def client(fake, exchange):
    options = {"limit": BINANCE_LIMIT} if exchange == "binance" else {}
    return make_client(exchange, fake.base_url(exchange), make_session(retries=2, backoff=0.01),
                       timeout=(1, 2), pause=0, **options)


def closed(candles, since, now, step):
    return [c for c in candles if (since is None or c.open_time > since) and c.open_time + step <= now]


def same(got, want):
    """Same open times exactly, and the same values to the last of Binance's 8 decimals (the
    synthetic parts and regrouped volumes carry more: a twelfth of an hour's volume)."""
    assert [c.open_time for c in got] == [c.open_time for c in want]
    for g, w in zip(got, want):
        assert (g.open, g.high, g.low, g.close, g.volume) == pytest.approx((w.open, w.high, w.low, w.close, w.volume),
                                                                            rel=1e-10)
    return True


@pytest.mark.parametrize("text", MARKETS)
def test_latest_page_is_parsed_on_the_grid_without_the_open_candle(fake, series, text):
    market = parse_market(text)
    got = client(fake, market.exchange).fetch(market, None, NOW)
    step = grid_of(market).step
    if market.exchange == "binance":  # the latest 100 opening before `now` (endTime), less the open one
        want = closed([c for c in series[text] if c.open_time < NOW][-BINANCE_LIMIT:], None, NOW, step)
    else:  # `to` is the open candle's start: the 200 closed ones before it
        want = closed(series[text], None, NOW, step)[-200:]
    assert same(got, want)
    assert got[-1].open_time == grid_of(market).last_closed(NOW)
    assert fake.count() == 1


@pytest.mark.parametrize("text", MARKETS)
def test_backfill_pages_without_gaps_or_duplicates(fake, series, text):
    market = parse_market(text)
    step = grid_of(market).step
    since = grid_of(market).last_closed(NOW) - SPANS[market.interval]
    got = client(fake, market.exchange).fetch(market, since, NOW)
    assert same(got, closed(series[text], since, NOW, step))
    assert len({c.open_time for c in got}) == len(got) and all(grid_of(market).contains(c.open_time) for c in got)
    per_page = BINANCE_LIMIT if market.exchange == "binance" else 200
    assert fake.count(PAGED[market.exchange]) >= len(got) / per_page > 1  # it really paged
    if market.exchange != "binance":  # each page ends where the one before began (`to` is exclusive)
        tos = [q["to"] for _, q in fake.log]
        assert len(set(tos)) == len(tos) == fake.count()


def test_a_real_maintenance_gap_stays_a_gap_in_4h_candles(fake, series):
    market = parse_market("upbit:ETH-KRW@4h")
    got = client(fake, "upbit").fetch(market, datetime(2023, 11, 30, tzinfo=UTC), NOW)
    times = [c.open_time for c in got]
    assert datetime(2023, 12, 3, 16, tzinfo=UTC) not in times  # Upbit traded no ETH 16Z..20Z that day
    assert max(b - a for a, b in zip(times, times[1:])) == timedelta(hours=8)


@pytest.mark.parametrize("exchange, day_hour, block_hours", [
    ("bithumb", 15, {3, 7, 11, 15, 19, 23}),  # 00:00 KST, and 4h blocks from it
    ("upbit", 0, {0, 4, 8, 12, 16, 20}),
    ("binance", 0, {0, 4, 8, 12, 16, 20}),
])
def test_days_and_4h_blocks_start_at_the_exchanges_day_boundary_in_utc(fake, exchange, day_hour, block_hours):
    days = client(fake, exchange).fetch(parse_market(f"{exchange}:{SYMBOLS[exchange]}@1d"),
                                        NOW - timedelta(days=30), NOW)
    blocks = client(fake, exchange).fetch(parse_market(f"{exchange}:{SYMBOLS[exchange]}@4h"),
                                          NOW - timedelta(days=5), NOW)
    assert {(c.open_time.hour, c.open_time.minute) for c in days} == {(day_hour, 0)}
    assert {c.open_time.hour for c in blocks} == block_hours
    # At 12:30 UTC on 2023-12-10 Bithumb's day of the 10th (KST) is open since 15:00 UTC the day before.
    last_day = datetime(2023, 12, 8, 15, tzinfo=UTC) if exchange == "bithumb" else datetime(2023, 12, 9, tzinfo=UTC)
    assert days[-1].open_time == last_day


def test_bithumb_sends_to_as_kst_wall_time_on_its_own_day_boundary(fake):
    client(fake, "bithumb").fetch(parse_market("bithumb:ETH-KRW@1d"), NOW - timedelta(days=300), NOW)
    tos = [q["to"] for _, q in fake.log]
    assert tos[0] == "2023-12-10 00:00:00"  # the open day's start, 2023-12-09T15:00Z, as KST wall time
    assert all(to.endswith(" 00:00:00") for to in tos)


@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("exchange", SYMBOLS)
def test_the_open_candle_is_dropped_then_served_closed_with_final_values(fake, series, exchange, interval):
    market = parse_market(f"{exchange}:{SYMBOLS[exchange]}@{interval}")
    grid = grid_of(market)
    c = client(fake, exchange)
    newest = c.fetch(market, grid.last_closed(NOW) - 3 * grid.step, NOW)[-1]
    assert newest.open_time == grid.last_closed(NOW)
    fake.now = grid.floor(NOW) + grid.step  # the candle open at NOW has just closed
    (new,) = c.fetch(market, newest.open_time, fake.now)
    assert same([new], [x for x in series[str(market)] if x.open_time == grid.floor(NOW)])


@pytest.mark.parametrize("text", MARKETS)
def test_a_bad_row_on_a_later_page_fails_the_whole_fetch(fake, text):
    market = parse_market(text)
    fake.fail_next("bad_row", path_contains=PAGED[market.exchange], after=1)
    with pytest.raises(ExchangeError, match=rf"^{market.exchange} .* row \d+ \(.*\): prices break low <= open"):
        client(fake, market.exchange).fetch(market, grid_of(market).last_closed(NOW) - SPANS[market.interval], NOW)


@pytest.mark.parametrize("text", [m for m in MARKETS if not m.startswith("binance")])
def test_an_empty_page_in_the_middle_of_a_backfill_is_a_failed_fetch(fake, text):
    market = parse_market(text)
    fake.fail_next("empty", path_contains="/v1/candles/", after=1)
    with pytest.raises(ExchangeError, match=r"empty page for to=.* right after a full page of 200: a failed fetch"):
        client(fake, market.exchange).fetch(market, grid_of(market).last_closed(NOW) - SPANS[market.interval], NOW)


@pytest.mark.parametrize("text", [m for m in MARKETS if not m.startswith("binance")])
def test_a_short_page_before_a_stored_candle_is_a_failed_fetch(fake, series, text):
    market = parse_market(text)
    since = grid_of(market).last_closed(NOW) - SPANS[market.interval]
    known = since + grid_of(market).step  # the store already holds a candle this old
    fake.fail_next("short", path_contains="/v1/candles/", after=1)
    with pytest.raises(ExchangeError, match=r"has \d+ of 200 candles and ends at .* although the store holds"):
        client(fake, market.exchange).fetch(market, since, NOW, known=known)
    # Without a stored candle to contradict it, the pager goes on from where the short page ended.
    fake.fail_next("short", path_contains="/v1/candles/", after=1)
    assert same(client(fake, market.exchange).fetch(market, since, NOW),
                closed(series[text], since, NOW, grid_of(market).step))


@pytest.mark.parametrize("interval", INTERVALS)
def test_binance_stops_at_an_empty_page_leaving_the_newest_for_the_next_run(fake, series, interval):
    # Paging forward, an early stop returns an unbroken run from `since`: the next run starts after it.
    market = parse_market(f"binance:ETH-USDT@{interval}")
    since = grid_of(market).last_closed(NOW) - SPANS[interval]
    fake.fail_next("empty", path_contains="/api/v3/klines", after=1)
    got = client(fake, "binance").fetch(market, since, NOW)
    assert same(got, closed(series[str(market)], since, NOW, grid_of(market).step)[:BINANCE_LIMIT])
