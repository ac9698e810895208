"""get_json and make_session against a real HTTP server: retries, Retry-After, timeouts, one-line errors."""
from __future__ import annotations

import socket
import time
from datetime import datetime, timezone

import pytest

from exchanges.base import ExchangeError
from exchanges.http import get_json, make_session
from tests.helpers.fake_exchange import USDT_CSV, FakeExchange, load_csv_slice

NOW = datetime(2023, 12, 10, 12, 30, tzinfo=timezone.utc)
PATH = "/api/v3/klines"
PARAMS = {"symbol": "ETHUSDT", "interval": "1h", "limit": 5}


@pytest.fixture(scope="module")
def candles():
    return load_csv_slice(USDT_CSV, "2023-12-01T00:00:00Z", 24 * 10)


@pytest.fixture
def fake(candles):
    with FakeExchange({"binance:ETH-USDT": candles}, now=NOW, timeout_delay=1.0) as fx:
        yield fx


def call(fake, retries=2, timeout=(1, 0.3), params=PARAMS):
    session = make_session(retries=retries, backoff=0.01)
    return get_json(session, fake.base_url("binance") + PATH, params, exchange="binance", endpoint=PATH,
                    timeout=timeout)


def error_of(fake, **kw) -> str:
    with pytest.raises(ExchangeError) as info:
        call(fake, **kw)
    msg = str(info.value)
    assert msg.startswith(f"binance {PATH}: ") and "\n" not in msg, msg
    return msg


def test_two_500s_then_success_returns_the_body(fake):
    fake.fail_next("500", times=2)
    assert len(call(fake, retries=3)) == 5
    assert fake.count(PATH) == 3


def test_persistent_500_names_status_and_tries(fake):
    fake.fail_next("500", times=99)
    msg = error_of(fake, retries=2)
    assert "HTTP 500" in msg and "after 3 tries" in msg and "Internal Server Error" in msg
    assert fake.count(PATH) == 3


def test_429_is_retried_after_the_retry_after_delay(fake):
    fake.fail_next("429", retry_after=1)
    started = time.monotonic()
    assert len(call(fake)) == 5
    assert time.monotonic() - started >= 0.9
    assert fake.count(PATH) == 2


def test_read_timeout_is_retried_then_reported(fake):
    fake.fail_next("timeout", times=99)
    msg = error_of(fake, retries=1, timeout=(1, 0.2))
    assert "timed out after 2 tries" in msg
    assert fake.count(PATH) == 2


def test_one_read_timeout_then_success(fake):
    fake.fail_next("timeout")
    assert len(call(fake, timeout=(1, 0.2))) == 5
    assert fake.count(PATH) == 2


def test_dropped_connection_is_retried(fake):
    fake.fail_next("disconnect")
    assert len(call(fake)) == 5
    assert fake.count(PATH) == 2


def test_html_502_page_is_quoted_briefly(fake):
    fake.fail_next("html", times=99)
    msg = error_of(fake, retries=1)
    assert "HTTP 502" in msg and "502 Bad Gateway" in msg and "<html>" in msg
    assert len(msg) < 200


def test_html_with_status_200_is_not_json(fake):
    fake.fail_next("html", status=200)
    msg = error_of(fake)
    assert "not JSON (text/html)" in msg and "<html>" in msg
    assert fake.count(PATH) == 1  # a 200 is not retried


def test_truncated_json_is_not_json(fake):
    fake.fail_next("garbage")
    assert "not JSON" in error_of(fake)


def test_json_error_object_is_quoted_and_not_retried(fake):
    msg = error_of(fake, params={**PARAMS, "symbol": "NOPEUSDT"})
    assert "HTTP 400" in msg and "error -1121: Invalid symbol." in msg
    assert fake.count(PATH) == 1


def test_errors_never_show_the_query_string(fake):
    fake.fail_next("500", times=99)
    secret = {**PARAMS, "signature": "S3CRET"}
    assert "S3CRET" not in error_of(fake, params=secret, retries=0)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    session = make_session(retries=1, backoff=0.01)
    with pytest.raises(ExchangeError) as info:
        get_json(session, f"http://127.0.0.1:{port}{PATH}", secret, exchange="binance", endpoint=PATH, timeout=1)
    assert "could not connect" in str(info.value) and "S3CRET" not in str(info.value)
