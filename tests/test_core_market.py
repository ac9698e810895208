"""The market key has one text form, everywhere: `exchange:BASE-QUOTE` for hourly candles and
`exchange:BASE-QUOTE@interval` otherwise; the parser reads back exactly what it prints."""
from __future__ import annotations

import pytest

from core.intervals import DEFAULT_INTERVAL, SUPPORTED
from core.market import Market, MarketError, parse_market_text
from db.market_key import market_columns, market_of


@pytest.mark.parametrize("interval", SUPPORTED)
def test_the_text_form_round_trips_through_the_parser_for_every_interval(interval):
    market = Market("upbit", "ETH", "KRW", interval)
    text = str(market)
    assert text == ("upbit:ETH-KRW" if interval == "1h" else f"upbit:ETH-KRW@{interval}")
    assert parse_market_text(text) == market
    assert parse_market_text(f"upbit:ETH-KRW@{interval}") == market  # `@1h` written out reads the same


def test_hourly_is_the_default_interval_and_prints_without_a_suffix():
    assert DEFAULT_INTERVAL == "1h" and Market("bithumb", "ETH", "KRW").interval == "1h"
    assert str(Market("bithumb", "ETH", "KRW")) == "bithumb:ETH-KRW"


def test_any_case_is_read_as_the_canonical_one():
    assert parse_market_text("Binance:eth-usdt@4H") == Market("binance", "ETH", "USDT", "4h")


@pytest.mark.parametrize("text, why", [
    ("upbit:ETH-KRW\n", "white space"),
    ("upbit ETH-KRW", "white space"),
    ("upbit:ETHKRW", "is not of the form exchange:BASE-QUOTE"),
    ("ETH-KRW", "is not of the form exchange:BASE-QUOTE"),
])
def test_text_that_is_not_a_market_is_refused_naming_the_form(text, why):
    with pytest.raises(MarketError, match=why):
        parse_market_text(text)


def test_the_key_and_its_columns_are_one_and_the_same():
    market = Market("bithumb", "BTC", "KRW", "1d")
    columns = market_columns(market)
    assert columns == {"exchange": "bithumb", "symbol": "BTC-KRW", "interval": "1d"}
    assert market_of(type("Row", (), columns)) == market == Market.from_columns("bithumb", "BTC-KRW", "1d")
