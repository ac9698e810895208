"""A database made by the previous release (migration 0003, rows in every table, a model in the old
weights format) upgraded to this one with `forecaster db upgrade`, on SQLite and Postgres: nothing is
lost, every old row reads as the 1h market it was, and the old model is retired for a new training
the first time it would forecast, instead of failing every hour."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from safetensors.torch import save

from db.engine import make_engine
from db.migrate import head_revision, upgrade
from db.types import UTCDateTime
from exchanges.base import parse_market
from jobs.bootstrap import bootstrap
from jobs.errors import JobError
from jobs.predict import predict_market
from jobs.settings import load_settings
from reports.status import collect_status
from tests.helpers.cli import run_cli

T0 = datetime(2023, 12, 31, 18, tzinfo=timezone.utc)
H = timedelta(hours=1)
MARKET = parse_market("binance:ETH-USDT")
TABLES = ("candles", "job_runs", "model_runs", "model_weights", "predictions")


def _table(name: str, *columns: str) -> sa.TableClause:
    """A table of revision 0003 as plain columns; times bound as the service stores them."""
    return sa.table(name, *(sa.column(c, UTCDateTime() if c.endswith(("_time", "_at", "_start", "_end"))
                                      else None) for c in columns))


def _old_weights() -> bytes:
    """Safetensors bytes in the previous release's model format (forecaster-quantile-lstm/1)."""
    import torch
    return save({"head.bias": torch.zeros(3)}, metadata={"format": "forecaster-quantile-lstm/1",
                                                          "config": json.dumps({"lookback": 168})})


def _fill_0003(conn) -> None:
    conn.execute(sa.insert(_table("candles", "exchange", "symbol", "interval", "open_time", "open", "high", "low",
                                  "close", "volume", "source", "ingested_at")), [
        {"exchange": "binance", "symbol": "ETH-USDT", "interval": "1h", "open_time": T0 + i * H, "open": 2300.0 + i,
         "high": 2310.0 + i, "low": 2290.0 + i, "close": 2301.0 + i, "volume": 5.0, "source": "api",
         "ingested_at": T0} for i in range(6)])
    conn.execute(sa.insert(_table("model_runs", "id", "exchange", "symbol", "interval", "status", "started_at",
                                  "finished_at", "train_start", "train_end", "val_mae", "val_naive_mae", "val_rmae",
                                  "val_coverage", "config")),
                 [{"id": 7, "exchange": "binance", "symbol": "ETH-USDT", "interval": "1h", "status": "promoted",
                   "started_at": T0, "finished_at": T0, "train_start": T0 - 4320 * H, "train_end": T0,
                   "val_mae": 1.5, "val_naive_mae": 1.5, "val_rmae": 1.0, "val_coverage": 0.8,
                   "config": json.dumps({"lookback": 168, "val_hours": 2160})}])
    conn.execute(sa.insert(_table("model_weights", "model_run_id", "format", "weights", "created_at")),
                 [{"model_run_id": 7, "format": "safetensors", "weights": _old_weights(), "created_at": T0}])
    conn.execute(sa.insert(_table("predictions", "model_run_id", "exchange", "symbol", "interval", "kind",
                                  "origin_time", "target_time", "horizon", "yhat", "yhat_lower", "yhat_upper",
                                  "created_at")), [
        {"model_run_id": 7 if kind == "live" else None, "exchange": "binance", "symbol": "ETH-USDT",
         "interval": "1h", "kind": kind, "origin_time": T0, "target_time": T0 + h * H, "horizon": h,
         "yhat": 2301.0, "yhat_lower": 2290.0, "yhat_upper": 2312.0, "created_at": T0 + H}
        for kind in ("live", "backtest") for h in (1, 2, 3)])
    conn.execute(sa.insert(_table("job_runs", "job", "exchange", "symbol", "started_at", "finished_at", "status",
                                  "rows", "message")), [
        {"job": job, "exchange": "binance", "symbol": "ETH-USDT", "started_at": T0, "finished_at": T0,
         "status": "ok", "rows": 1, "message": "before the upgrade"} for job in ("ingest", "train", "predict")])


def _counts(conn) -> dict[str, int]:
    return {n: conn.execute(sa.text(f"SELECT COUNT(*) FROM {n}")).scalar() for n in TABLES}


def test_an_upgrade_keeps_every_row_reads_it_as_1h_and_retrains_the_old_model(db_url):
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0003")
        with engine.begin() as conn:
            _fill_0003(conn)
        with engine.connect() as conn:
            before = _counts(conn)
    finally:
        engine.dispose()

    result = run_cli("db", "upgrade", env={"FORECASTER_DATABASE_URL": db_url})
    assert result.returncode == 0, result.stderr
    assert f"at migration {head_revision()}" in result.stdout

    svc = bootstrap(load_settings(database_url=db_url, device="cpu", markets="binance:ETH-USDT"))
    try:
        with svc.engine.connect() as conn:
            assert _counts(conn) == before  # nothing lost
            assert conn.execute(sa.text("SELECT DISTINCT interval FROM job_runs")).scalars().all() == ["1h"]
            assert conn.execute(sa.text("SELECT COUNT(*) FROM latest_forecast")).scalar() == 3
            assert conn.execute(sa.text("SELECT COUNT(*) FROM forecast_accuracy")).scalar() == 6
        report = collect_status(svc, [MARKET])
        (market,) = report["markets"]
        assert market["interval"] == "1h" and market["candles"] == 6 and market["model"]["id"] == 7
        assert market["jobs"]["ingest"]["message"] == "before the upgrade"

        # The old model cannot forecast with this release: it is retired, so the market is trained anew.
        with pytest.raises(JobError, match="older release.*retired"):
            predict_market(svc, MARKET)
        with svc.engine.connect() as conn:
            status, error = conn.execute(sa.text("SELECT status, error FROM model_runs WHERE id = 7")).one()
        assert status == "retired" and "older release" in error
        assert collect_status(svc, [MARKET])["markets"][0]["model"] is None  # the daemon trains it now
    finally:
        svc.close()
