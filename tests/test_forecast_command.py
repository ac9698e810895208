"""`forecaster forecast`: a trader reads the newest forecast and its band in the terminal, in the
quote currency with thousands grouped (`1,134,060 KRW`, `3,565.80 USDT`), each market by its key."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from core.market import Market
from db.candles import write_candles
from db.models import ModelRun
from db.predictions import write_predictions
from reports.forecast_view import format_price
from tests.helpers.cli import run_cli

ORIGIN = datetime(2023, 12, 31, 23, tzinfo=timezone.utc)


def _store(sessions, exchange: str, symbol: str, interval: str, close: float, horizon: int, step: timedelta):
    candles = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0},
                           index=pd.DatetimeIndex([ORIGIN], name="open_time"))
    with sessions() as s, s.begin():
        market = Market.from_columns(exchange, symbol, interval)
        write_candles(candles, session=s, market=market, source="csv")
        run = ModelRun(exchange=exchange, symbol=symbol, interval=interval, status="promoted", started_at=ORIGIN)
        s.add(run)
        s.flush()
        h = list(range(1, horizon + 1))
        write_predictions(pd.DataFrame({"origin_time": ORIGIN, "target_time": [ORIGIN + step * k for k in h],
                                        "horizon": h, "yhat": close * 1.001, "yhat_lower": close * 0.98,
                                        "yhat_upper": close * 1.02}),
                          session=s, market=market, kind="live",
                          model_run_id=run.id)


def test_prices_are_grouped_in_the_quote_currency():
    assert format_price(1_134_060.4, "KRW") == "1,134,060"
    assert format_price(3565.8, "USDT") == "3,565.80"
    assert format_price(0.081234, "USDT") == "0.081234"  # a small coin keeps its digits
    assert format_price(112.5, "KRW") == "112.50"


def test_the_newest_forecast_prints_with_its_band_per_market_key(migrated):
    url, _, sessions = migrated
    _store(sessions, "upbit", "ETH-KRW", "1d", 3_134_060.0, 7, timedelta(days=1))
    _store(sessions, "binance", "ETH-USDT", "1h", 2_281.5, 24, timedelta(hours=1))
    env = {"FORECASTER_DATABASE_URL": url}
    done = run_cli("forecast", "--market", "upbit:ETH-KRW@1d", "--market", "binance:ETH-USDT",
                   "--tz", "Asia/Seoul", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "upbit:ETH-KRW@1d: forecast from the close of the candle opened 2024-01-01 08:00 Asia/Seoul " \
           "(3,134,060 KRW)" in out
    krw = [line.split() for line in out.splitlines() if line.strip().startswith(("1 ", "7 "))][:2]
    assert krw[0][:6] == ["1", "2024-01-02", "08:00", "3,071,379", "3,137,194", "3,196,741"]
    assert krw[1][1] == "2024-01-08"  # 7 days ahead, in days: the interval's own steps
    assert "binance:ETH-USDT: forecast from" in out and "(2,281.50 USDT)" in out
    assert "2,235.87" in out and "2,327.13" in out  # the band, with cents
    assert "e+0" not in out


def test_a_market_without_a_forecast_says_what_to_do(migrated):
    url, _, _ = migrated
    done = run_cli("forecast", "--market", "bithumb:ETH-KRW", env={"FORECASTER_DATABASE_URL": url})
    assert done.returncode == 1
    assert done.stderr.startswith("error: bithumb:ETH-KRW: no live forecast yet") and done.stdout == ""
    bad = run_cli("forecast", "--market", "bithumb:ETH-KRW", "--tz", "Mars/Olympus", env={"FORECASTER_DATABASE_URL": url})
    assert bad.returncode == 1 and "is not a time zone" in bad.stderr


def test_accuracy_figures_of_krw_markets_read_grouped_never_in_exponent_form():
    from jobs.figures import accuracy_line
    line = accuracy_line({"mae": 1_134_060.4, "naive_mae": 1_200_000.0, "rmae": 0.945, "coverage": 0.8,
                          "interval_score": 5_012_345.0})
    assert line.startswith("MAE 1,134,060 vs naive 1,200,000 (rMAE 0.9450)") and "5,012,345" in line
    assert "e+" not in accuracy_line({"mae": 29.87981, "naive_mae": 30.0, "rmae": 0.996, "coverage": 0.8,
                                      "interval_score": 147.5})
