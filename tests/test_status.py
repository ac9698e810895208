"""`forecaster status`: what an operator reads in a terminal, and the JSON a script reads."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pandas as pd

from core.candle import Candle
from db.candles import candles_to_frame, write_candles
from core.names import JOBS
from db.job_runs import finish_job_run, start_job_run
from db.model_runs import promote, record_trained, start_model_run
from db.predictions import write_predictions
from exchanges.base import parse_market
from core.records import TrainingMetrics
from reports.status import collect_status, render_status
from tests.helpers.cli import run_cli

KRW, USDT = parse_market("bithumb:ETH-KRW"), parse_market("binance:ETH-USDT")
NOW = datetime(2024, 3, 1, 12, 20, tzinfo=timezone.utc)  # the last closed hour opens at 11:00
H = timedelta(hours=1)


def _fill(sessions) -> int:
    newest = datetime(2024, 3, 1, 9, tzinfo=timezone.utc)  # 2 h behind
    candles = [Candle(newest - i * H, 100.0, 101.0, 99.0, 100.5, 3.0) for i in range(5)]
    with sessions() as s, s.begin():
        write_candles(candles_to_frame(candles), session=s, market=KRW, source="api")
        run_id = start_model_run(session=s, market=KRW, device="cpu", config={},
                                 train_start=newest - 4 * H, train_end=newest - H)
        record_trained(session=s, run_id=run_id, weights=b"weights", status="trained",
                       metrics=TrainingMetrics(val_mae=9.5, val_naive_mae=10.0, val_rmae=0.95, val_coverage=0.79,
                                               n_train=100, n_val=20, epochs=3, device="cpu"))
        promote(session=s, run_id=run_id, market=KRW)
        forecast = pd.DataFrame({"origin_time": newest - H, "target_time": [newest, newest + H], "horizon": [1, 2],
                                 "yhat": 100.0, "yhat_lower": 99.0, "yhat_upper": 101.0})
        write_predictions(forecast, session=s, market=KRW, kind="live", model_run_id=run_id)
        for job, status, message in (("ingest", "ok", "5 new candles"), ("train", "ok", "promoted"),
                                     ("ingest", "failed", "bithumb /public/candlestick/ETH_KRW/1h: status 5600")):
            rid = start_job_run(session=s, job=job, market=KRW)
            finish_job_run(session=s, run_id=rid, status=status, rows=5 if status == "ok" else None, message=message)
    return run_id


def test_status_reports_candles_model_forecast_and_last_runs(migrated):
    url, _, sessions = migrated
    run_id = _fill(sessions)
    services = SimpleNamespace(sessions=sessions, settings=SimpleNamespace(database_url=url))
    report = collect_status(services, [KRW, USDT], now=NOW)
    krw, usdt = report["markets"]
    assert krw["candles"] == 5 and krw["lag_hours"] == 2.0
    assert krw["newest_candle"] == datetime(2024, 3, 1, 9, tzinfo=timezone.utc)
    assert krw["model"]["id"] == run_id and krw["model"]["val_rmae"] == 0.95 and krw["model"]["val_coverage"] == 0.79
    assert krw["newest_origin"] == datetime(2024, 3, 1, 8, tzinfo=timezone.utc)
    assert krw["jobs"]["ingest"]["status"] == "failed" and "5600" in krw["jobs"]["ingest"]["message"]
    assert krw["jobs"]["ingest"]["last_ok_at"] is not None
    assert krw["jobs"]["train"]["status"] == "ok" and krw["jobs"]["predict"] is None
    assert usdt["newest_candle"] is None and usdt["model"] is None and usdt["jobs"]["ingest"] is None

    text = render_status(report)
    assert "bithumb:ETH-KRW  (1h candles, configured)" in text and "binance:ETH-USDT  (1h candles, configured)" in text
    assert "newest candle   2024-03-01T09:00Z  lag 2 hours  (5 candles)" in text
    assert f"promoted model  run {run_id}, trained to 2024-03-01T08:00Z" in text
    assert "val MAE 9.5 vs naive 10, rMAE 0.9500, 80% coverage 0.790" in text
    assert "newest forecast origin 2024-03-01T08:00Z  (1 hour behind the newest candle)" in text
    assert "status 5600" in text and "(last ok 20" in text
    assert "promoted model  none" in text and "predict         never run" in text

    parsed = json.loads(render_status(report, as_json=True))
    assert parsed["markets"][0]["newest_candle"] == "2024-03-01T09:00:00Z"
    assert parsed["markets"][0]["model"]["val_rmae"] == 0.95
    assert parsed["markets"][1]["model"] is None


def test_status_command_on_a_fresh_store(sqlite_url):
    env = {"FORECASTER_DATABASE_URL": sqlite_url, "FORECASTER_MARKETS": "bithumb:ETH-KRW,binance:ETH-USDT"}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    done = run_cli("status", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [m["market"] for m in report["markets"]] == ["bithumb:ETH-KRW", "binance:ETH-USDT"]
    assert report["markets"][0]["newest_candle"] is None
    one = run_cli("status", "--market", "binance:ETH-USDT", env=env)
    assert one.returncode == 0 and "binance:ETH-USDT" in one.stdout and "bithumb" not in one.stdout
    assert "never run" in one.stdout


def test_a_daily_market_s_lag_forecast_and_backtest_stride_are_told_in_days():
    newest = datetime(2024, 3, 1, tzinfo=timezone.utc)
    backtest = {"id": 4, "finished_at": NOW, "days": 360, "step": 1, "n_origins": 360, "last_origin": newest,
                "rmae": 0.98, "coverage": 0.81, "ratio_vs_empirical": None}
    market = {"market": "upbit:ETH-KRW@1d", "configured": True, "interval": "1d", "candles": 700,
              "newest_candle": newest, "lag_steps": 2, "lag_hours": 48.0, "model": None,
              "newest_origin": newest - 3 * timedelta(days=1), "jobs": dict.fromkeys(JOBS),
              "backtest": backtest}
    text = render_status({"database": "sqlite:///x.db", "now": NOW, "markets": [market]})
    assert "lag 2 days  (700 candles)" in text
    assert "(3 days behind the newest candle)" in text
    assert ": 360 days, stride 1 day, 360 origins" in text
