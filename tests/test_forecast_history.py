"""What was forecast stays: the naive forecast is the close exactly (no noise read as skill), a
forecast superseded by a new model's is kept, and each backtest is a run with its settings and
figures whose rows point to it; on SQLite and Postgres, through the views."""
from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from db.types import UTCDateTime
from exchanges.base import parse_market
from forecaster.config import ModelConfig
from jobs.backtest import backtest_market
from jobs.bootstrap import bootstrap
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


def _query(svc, sql, **params):
    """Rows as mappings; times given as parameters are bound as the tables store them."""
    stmt = sa.text(sql).bindparams(*(sa.bindparam(k, type_=UTCDateTime) for k, v in params.items()
                                     if isinstance(v, datetime)))
    with svc.engine.connect() as conn:
        return conn.execute(stmt, params).mappings().all()


def _naive_horizons(svc, run_id: int) -> list[int]:
    from db.model_runs import load_weights
    from forecaster.predict import Forecaster
    with svc.sessions() as s:
        shrink = Forecaster.load(load_weights(session=s, run_id=run_id)).shrink
    return [h + 1 for h, factor in enumerate(shrink) if factor == 0]


def test_where_the_median_is_naive_the_forecast_is_the_close_exactly_and_ties_are_ties(services, tmp_path):
    run = train_market(services, MARKET, train_hours=1_200, config=TINY)
    naive = _naive_horizons(services, run.model_run_id)
    assert naive, "the tiny model has no skill in direction: its median is naive at some horizon"
    origin = predict_market(services, MARKET).origin
    latest = {r["horizon"]: r for r in _query(services, "SELECT * FROM latest_forecast")}
    close = _query(services, "SELECT close FROM candles WHERE open_time = :t", t=origin)[0]["close"]
    for h in naive:
        assert latest[h]["yhat"] == close == latest[h]["origin_close"]  # not 2281.8699999999994
        assert latest[h]["change_pct"] == 0
    assert all(r["band_width_pct"] > 0 for r in latest.values())

    import_csv(services, tmp_path / "all.csv", MARKET)  # the next 30 hours: every target known
    scored = {r["horizon"]: r for r in _query(services, "SELECT * FROM forecast_accuracy WHERE kind = 'live'")}
    week = {r["horizon"]: r for r in _query(services, "SELECT * FROM accuracy_7d WHERE kind = 'live'")}
    for h in naive:
        assert scored[h]["yhat"] == scored[h]["naive"]
        assert scored[h]["abs_error"] == scored[h]["naive_abs_error"] and scored[h]["vs_naive"] == 0
        assert week[h]["rmae"] == 1.0  # exactly: no 0.99999999999998 that reads as a win
        assert week[h]["same_as_naive"] == week[h]["n"] == 1
        assert week[h]["better_than_naive"] == week[h]["worse_than_naive"] == 0
    assert all(r["abs_error_pct"] == pytest.approx(100 * r["abs_error"] / r["actual"]) for r in scored.values())


def test_a_new_model_supersedes_the_forecast_of_an_origin_and_the_old_one_is_kept(services):
    first = train_market(services, MARKET, train_hours=1_200, config=TINY)
    origin = predict_market(services, MARKET).origin
    assert predict_market(services, MARKET).rows == 24  # the same forecast again changes nothing
    assert _query(services, "SELECT COUNT(*) AS n FROM prediction_history")[0]["n"] == 0
    second = train_market(services, MARKET, train_hours=1_200, config=ModelConfig(**{**TINY.to_dict(), "seed": 1}))
    assert second.status == "promoted", second.reason
    predict_market(services, MARKET)  # what the daemon does after a promotion

    current = _query(services, "SELECT model_run_id, created_at FROM predictions WHERE origin_time = :o", o=origin)
    kept = _query(services, "SELECT * FROM prediction_history WHERE origin_time = :o ORDER BY horizon", o=origin)
    assert {r["model_run_id"] for r in current} == {second.model_run_id} and len(current) == 24
    assert {r["model_run_id"] for r in kept} == {first.model_run_id} and len(kept) == 24
    assert all(r["superseded_at"] >= r["created_at"] for r in kept)
    versions = _query(services, "SELECT model_run_id, superseded_at FROM forecast_history "
                                "WHERE kind = 'live' AND origin_time = :o", o=origin)
    assert len(versions) == 48 and sum(v["superseded_at"] is None for v in versions) == 24
    assert [r["horizon"] for r in _query(services, "SELECT horizon FROM latest_forecast ORDER BY horizon")] == \
        list(range(1, 25))


def test_each_backtest_is_a_run_with_its_settings_and_figures_and_the_older_rows_are_kept(services):
    outcomes = [backtest_market(services, MARKET, days=2, step=24, retrain_every=168, train_hours=1_000,
                                horizon=24, config=TINY) for _ in range(2)]
    runs = _query(services, "SELECT * FROM backtest_runs ORDER BY id")
    assert [r["id"] for r in runs] == [o.backtest_run_id for o in outcomes]
    for run, outcome in zip(runs, outcomes):
        s = outcome.summary
        assert (run["days"], run["step"], run["retrain_every"], run["train_hours"], run["horizon"]) == (2, 24, 168, 1000, 24)
        assert json.loads(run["config"])["lookback"] == 48 and run["code_version"] and run["device"] == "cpu"
        assert run["n_origins"] == s.n_origins == 2 and run["n_fits"] == 1
        for k in ("mae", "naive_mae", "rmae", "coverage", "interval_score", "empirical_interval_score",
                  "ewma_coverage", "fhs_interval_score", "garch_interval_score", "garch_coverage",
                  "best_free_interval_score"):
            assert run[k] == pytest.approx(s.figures[k], rel=1e-12), k
        assert run["ratio_vs_empirical"] == pytest.approx(s.ratio["ratio"])
        assert run["ratio_low"] <= run["ratio_vs_empirical"] <= run["ratio_high"]
        table = _query(services, "SELECT * FROM backtest_horizons WHERE backtest_run_id = :r ORDER BY horizon",
                       r=run["id"])
        assert [t["horizon"] for t in table] == list(range(1, 25))
        assert [t["interval_score"] for t in table] == pytest.approx(outcome.table["interval_score"].tolist())
        assert [t["fhs_coverage"] for t in table] == pytest.approx(outcome.table["fhs_coverage"].tolist())
        assert [t["garch_interval_score"] for t in table] == \
            pytest.approx(outcome.table["garch_interval_score"].tolist())
    current = _query(services, "SELECT backtest_run_id, COUNT(*) AS n FROM predictions WHERE kind = 'backtest' "
                               "GROUP BY backtest_run_id")
    kept = _query(services, "SELECT backtest_run_id, COUNT(*) AS n FROM prediction_history GROUP BY backtest_run_id")
    assert [(r["backtest_run_id"], r["n"]) for r in current] == [(runs[1]["id"], 48)]
    assert [(r["backtest_run_id"], r["n"]) for r in kept] == [(runs[0]["id"], 48)]
    scored = _query(services, "SELECT DISTINCT backtest_run_id FROM forecast_accuracy WHERE kind = 'backtest'")
    assert [r["backtest_run_id"] for r in scored] == [runs[1]["id"]]
