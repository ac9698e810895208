"""Every client through the registry: each failure is one ExchangeError line naming exchange, endpoint, problem."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from exchanges.base import ExchangeError, parse_market
from exchanges.http import make_session
from exchanges.registry import make_client
from tests.helpers.fake_exchange import KRW_CSV, USDT_CSV, FakeExchange, load_csv_slice

NOW = datetime(2023, 12, 10, 12, 30, tzinfo=timezone.utc)
ENDPOINTS = {  # what one since=None fetch asks
    "bithumb:ETH-KRW": "/public/candlestick/ETH_KRW/1h",
    "upbit:ETH-KRW": "/v1/candles/minutes/60 KRW-ETH",
    "binance:ETH-USDT": "/api/v3/klines ETHUSDT",
}
PROBLEMS = {  # fault -> what the message must say
    "500": "HTTP 500 Internal Server Error after 3 tries",
    "html": "HTTP 502 Bad Gateway after 3 tries: body '<html>",
    "garbage": "but not JSON (application/json): '{\"status\":\"0000\",\"data\":[[1700000000000,\"29'",
    "timeout": "timed out after 3 tries",
    "bad_row": "prices break low <= open, close <= high",
}


@pytest.fixture(scope="module")
def markets():
    krw = load_csv_slice(KRW_CSV, "2023-11-20T00:00:00Z", 24 * 25)
    usdt = load_csv_slice(USDT_CSV, "2023-11-20T00:00:00Z", 24 * 25)
    return {"bithumb:ETH-KRW": krw, "upbit:ETH-KRW": krw, "binance:ETH-USDT": usdt}


@pytest.fixture
def fake(markets):
    with FakeExchange(markets, now=NOW, timeout_delay=0.5) as fx:
        yield fx


def client_for(fake, market):
    m = parse_market(market)
    return make_client(m.exchange, fake.base_url(m.exchange), make_session(retries=2, backoff=0.01),
                       timeout=(1, 0.15))


@pytest.mark.parametrize("market", ENDPOINTS)
@pytest.mark.parametrize("kind", PROBLEMS)
def test_each_fault_is_one_clear_line(fake, market, kind):
    fake.fail_next(kind, times=3)
    with pytest.raises(ExchangeError) as info:
        client_for(fake, market).fetch(parse_market(market), None, NOW)
    msg = str(info.value)
    exchange = market.split(":")[0]
    assert msg.startswith(f"{exchange} {ENDPOINTS[market]}") and PROBLEMS[kind] in msg and "\n" not in msg, msg
    assert "127.0.0.1" not in msg  # no URLs


@pytest.mark.parametrize("market", ENDPOINTS)
@pytest.mark.parametrize("kind", ["500", "429", "timeout"])
def test_two_transient_failures_then_success(fake, market, kind):
    fake.fail_next(kind, times=2)
    got = client_for(fake, market).fetch(parse_market(market), None, NOW)
    assert got and got[-1].open_time == datetime(2023, 12, 10, 11, tzinfo=timezone.utc)
    assert fake.count(ENDPOINTS[market].split()[0]) == 3
