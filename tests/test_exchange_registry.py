"""The one table of exchanges: every part of the program that lists exchanges agrees with it."""
from __future__ import annotations

from datetime import timedelta

import pytest

from core.intervals import INTERVALS
from core.market import MarketError
from exchanges.base import KNOWN_EXCHANGES, parse_market
from exchanges.binance import KLINE_INTERVALS, BinanceClient
from exchanges.bithumb import BithumbClient
from exchanges.http import make_session
from exchanges.registry import EXCHANGES, client_class, make_client
from exchanges.upbit import UpbitClient
from exchanges.v1_candles import V1_PATHS
from core.intervals import INTERVALS
from tests.helpers.fake_exchange import FakeExchange


def test_market_parsing_knows_exactly_the_exchanges_of_the_table():
    assert KNOWN_EXCHANGES == tuple(EXCHANGES) == ("bithumb", "upbit", "binance")
    assert all(ex.default_url.startswith("https://") for ex in EXCHANGES.values())


@pytest.mark.parametrize("name", EXCHANGES)
def test_each_row_names_a_client_that_serves_its_intervals(name):
    row = EXCHANGES[name]
    cls = client_class(name)
    assert cls.default_name == name
    assert set(row.intervals) <= set(INTERVALS)
    served = {"bithumb": V1_PATHS, "upbit": V1_PATHS, "binance": KLINE_INTERVALS}[name]
    assert set(row.intervals) == set(served)  # the client has an endpoint for each, and no other


@pytest.mark.parametrize("name", EXCHANGES)
def test_the_url_setting_of_each_row_is_the_one_settings_read(name, monkeypatch):
    from jobs.settings import Settings
    monkeypatch.setenv(EXCHANGES[name].url_setting, "http://127.0.0.1:9/elsewhere")
    assert getattr(Settings(), f"{name}_url") == "http://127.0.0.1:9/elsewhere"


def test_a_new_exchange_is_its_client_and_one_registry_row(tmp_path):
    """Nothing else: its markets parse, its URL setting is read and checked, its client is made.
    (In a fresh interpreter: the settings take their URL fields from the table as it is imported.)"""
    script = """
import os
from datetime import timedelta
from exchanges import registry
registry.EXCHANGES["korbit"] = registry.Exchange("korbit", "exchanges.upbit:UpbitClient", "https://api.korbit.co.kr",
                                                 ("1h", "1d"), timedelta(0))
from exchanges.base import parse_market
from exchanges.http import make_session
from jobs.settings import load_settings
os.environ["FORECASTER_KORBIT_URL"] = "http://127.0.0.1:9/korbit"
settings = load_settings()
market = parse_market("korbit:eth-krw@1d")
client = registry.make_client("korbit", settings.exchange_url("korbit"), make_session())
print(market, settings.exchange_url("korbit"), client.base_url)
os.environ["FORECASTER_KORBIT_URL"] = "ftp://nowhere"
try:
    load_settings()
except Exception as e:
    print(type(e).__name__, str(e).split(":")[0])
"""
    import subprocess
    import sys
    from tests.helpers.paths import REPO
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["korbit:ETH-KRW@1d http://127.0.0.1:9/korbit http://127.0.0.1:9/korbit",
                                       "SettingsError FORECASTER_KORBIT_URL"]


def test_the_test_exchange_points_each_url_setting_at_itself():
    with FakeExchange() as fake:
        assert fake.env() == {ex.url_setting: fake.base_url(name) for name, ex in EXCHANGES.items()}


def test_day_starts_of_the_table():
    assert EXCHANGES["bithumb"].day_start == timedelta(hours=15)  # 00:00 KST
    assert EXCHANGES["upbit"].day_start == EXCHANGES["binance"].day_start == timedelta(0)  # 00:00 UTC


def test_an_interval_the_exchange_does_not_serve_is_refused_when_parsed(monkeypatch):
    from dataclasses import replace
    monkeypatch.setitem(EXCHANGES, "upbit", replace(EXCHANGES["upbit"], intervals=("1h",)))
    with pytest.raises(MarketError, match=r"upbit does not serve 1d candles \(it serves 1h\)"):
        parse_market("upbit:ETH-KRW@1d")


@pytest.mark.parametrize("exchange, cls", [("bithumb", BithumbClient), ("upbit", UpbitClient),
                                           ("binance", BinanceClient)])
def test_make_client_builds_the_exchange_client(exchange, cls):
    client = make_client(exchange, None, make_session())
    assert isinstance(client, cls) and client.name == exchange and client.base_url == EXCHANGES[exchange].default_url
    assert make_client(exchange, "http://127.0.0.1:1/x/", make_session()).base_url == "http://127.0.0.1:1/x"


def test_make_client_rejects_an_unknown_exchange():
    with pytest.raises(ValueError, match="unknown exchange 'kraken'"):
        make_client("kraken", None, make_session())
