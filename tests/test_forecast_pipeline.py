"""End to end on real data: import, train, predict, backtest, and the BI views, on SQLite and Postgres."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import sqlalchemy as sa

from exchanges.base import parse_market
from forecaster.config import ModelConfig
from jobs.backtest import backtest_market
from jobs.bootstrap import bootstrap
from jobs.errors import JobError
from jobs.import_csv import import_csv
from jobs.predict import predict_market
from jobs.settings import load_settings
from jobs.train import train_market
from tests.helpers.paths import BINANCE_CSV

MARKET = parse_market("binance:ETH-USDT")
TINY = ModelConfig(lookback=48, hidden_size=8, max_epochs=2, val_steps=200, patience=1)


@pytest.fixture
def services(migrated, tmp_path):
    url, _, _ = migrated
    rows = pd.read_csv(BINANCE_CSV).tail(1_400)
    rows.head(1_370).to_csv(tmp_path / "older.csv", index=False)
    rows.to_csv(tmp_path / "all.csv", index=False)
    svc = bootstrap(load_settings(database_url=url, device="cpu"))
    import_csv(svc, tmp_path / "older.csv", MARKET)
    yield svc
    svc.close()


def _query(svc, sql):
    with svc.engine.connect() as conn:
        return conn.execute(sa.text(sql)).mappings().all()


def test_train_predict_and_query_the_views(services, tmp_path):
    with pytest.raises(JobError, match="no promoted model yet"):
        predict_market(services, MARKET)
    trained = train_market(services, MARKET, train_hours=1_200, config=TINY)
    assert trained.status == "promoted"
    run = _query(services, "SELECT * FROM model_runs")[0]
    assert run["status"] == "promoted" and run["device"] == "cpu" and run["n_train"] > 0
    assert run["val_rmae"] <= 1.0 and 0 <= run["val_coverage"] <= 1 and '"lookback": 48' in run["config"]
    first = predict_market(services, MARKET)
    assert first.rows == 24
    latest = _query(services, "SELECT * FROM latest_forecast ORDER BY horizon")
    assert [r["horizon"] for r in latest] == list(range(1, 25))
    assert all(r["yhat_lower"] <= r["yhat"] <= r["yhat_upper"] for r in latest)
    assert latest[0]["origin_time"] is not None and latest[0]["model_run_id"] == trained.model_run_id
    # The next 30 hours arrive: a new origin, and the first forecast can be judged against the truth.
    import_csv(services, tmp_path / "all.csv", MARKET)
    second = predict_market(services, MARKET)
    assert second.origin == first.origin + pd.Timedelta(hours=30)
    assert {r["horizon"] for r in _query(services, "SELECT horizon FROM latest_forecast")} == set(range(1, 25))
    judged = _query(services, "SELECT * FROM forecast_accuracy WHERE kind = 'live' ORDER BY horizon")
    assert len(judged) == 24  # only the first origin's targets exist yet
    for r in judged:
        assert r["error"] == pytest.approx(r["yhat"] - r["actual"])
        assert r["abs_error"] == pytest.approx(abs(r["yhat"] - r["actual"]))
        assert r["naive_abs_error"] == pytest.approx(abs(r["naive"] - r["actual"]))
        assert r["inside_interval"] == int(r["yhat_lower"] <= r["actual"] <= r["yhat_upper"])


def test_a_model_worse_than_naive_is_rejected_and_a_crash_keeps_the_promoted_one(services):
    from forecaster.train import train
    good = train_market(services, MARKET, train_hours=1_200, config=TINY)

    def worse_than_naive(*args, **kwargs):
        result = train(*args, **kwargs)
        metrics = dataclasses.replace(result.metrics, val_mae=2 * result.metrics.val_naive_mae, val_rmae=2.0)
        return dataclasses.replace(result, metrics=metrics)

    def crashing(*args, **kwargs):
        raise RuntimeError("CUDA error: out of memory")

    rejected = train_market(services, MARKET, train_hours=1_200, config=TINY, fit=worse_than_naive)
    assert rejected.status == "rejected" and "worse than naive" in rejected.reason
    with pytest.raises(RuntimeError):
        train_market(services, MARKET, train_hours=1_200, config=TINY, fit=crashing)
    runs = _query(services, "SELECT id, status, error FROM model_runs ORDER BY id")
    assert [r["status"] for r in runs] == ["promoted", "rejected", "failed"]
    assert runs[0]["id"] == good.model_run_id and "out of memory" in runs[2]["error"]
    assert predict_market(services, MARKET).model_run_id == good.model_run_id
    jobs = _query(services, "SELECT status FROM job_runs WHERE job = 'train' ORDER BY id")
    assert [j["status"] for j in jobs] == ["ok", "ok", "failed"]


def test_backtest_writes_rows_the_accuracy_view_can_judge(services):
    outcome = backtest_market(services, MARKET, days=3, step=24, retrain_every=168, train_hours=1_000,
                              horizon=24, config=TINY)
    assert outcome.summary.n_fits == 1 and outcome.summary.n_origins == 3
    assert list(outcome.table["horizon"]) == list(range(1, 25))
    rows = _query(services, "SELECT COUNT(*) AS n, AVG(inside_interval) AS cover, SUM(abs_error) AS e, "
                            "SUM(naive_abs_error) AS ne FROM forecast_accuracy WHERE kind = 'backtest'")[0]
    assert rows["n"] == 3 * 24
    assert rows["e"] / rows["ne"] == pytest.approx(outcome.summary.figures["rmae"])
    assert "rMAE" in outcome.report() and "naive" in outcome.report()
