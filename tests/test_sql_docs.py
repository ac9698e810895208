"""docs/sql.md cannot rot: every worked query runs on SQLite and on Postgres, on data made by the real
pipeline (a real Binance slice imported, a tiny model trained and retrained, a forecast every hour
as the daemon makes them, one origin forecast again by a model trained up to it with `predict --at
--replace`, a walk-forward backtest run twice, a real Upbit slice with its outage gaps, a failed
job, then an Upbit model and forecast), and returns the rows a user expects."""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from tests.helpers.documented_sql import DIALECTS, DOC, documented_queries
from tests.helpers.paths import BINANCE_CSV
from tests.helpers.pipeline_database import LIVE_HOURS, NEWEST, SLICE_HOURS, bi_database


@pytest.fixture(scope="module", params=DIALECTS)
def bi(request, tmp_path_factory):
    yield from bi_database(request, tmp_path_factory, request.param)


def utc(value) -> pd.Timestamp:
    """SQLite gives times as UTC text, Postgres as aware datetimes: the same instant either way."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _truth() -> pd.Series:
    closes = pd.read_csv(BINANCE_CSV).tail(SLICE_HOURS)
    return pd.Series(closes["close"].to_numpy(), index=pd.to_datetime(closes["ts"], utc=True))


HORIZONS = list(range(1, 25))
REFORECAST = NEWEST - pd.Timedelta(hours=LIVE_HOURS - 1 - LIVE_HOURS // 2)  # forecast again by predict --at


def check_latest_forecast(rows, db):
    assert rows["horizon"].tolist() == HORIZONS
    assert {utc(t) for t in rows["origin_time"]} == {NEWEST}
    assert [utc(t) for t in rows["target_time"]] == [NEWEST + pd.Timedelta(hours=h) for h in HORIZONS]
    assert (rows["last_close"] == _truth()[NEWEST]).all()
    assert ((rows["yhat_lower"] <= rows["yhat"]) & (rows["yhat"] <= rows["yhat_upper"])).all()
    change = rows["change_pct"].astype(float)
    assert (change.abs() < 20).all()
    # a naive median is the close itself, so its change is 0, not floating-point noise
    assert ((rows["yhat"] == rows["last_close"]) == (change == 0)).all()
    width = 100 * (rows["yhat_upper"] - rows["yhat_lower"]) / rows["last_close"]
    assert (rows["band_width_pct"].astype(float) - width).abs().max() < 1e-9


def check_latest_forecast_all(rows, db):
    assert set(zip(rows["exchange"], rows["symbol"])) == {("binance", "ETH-USDT"), ("upbit", "ETH-KRW")}
    assert rows["market"].tolist() == ["binance:ETH-USDT"] * 2 + ["upbit:ETH-KRW"] * 2
    assert rows["interval"].tolist() == ["1h"] * 4
    assert rows["horizon"].tolist() == [1, 24] * 2  # the first and the last step of each


def check_accuracy_by_horizon_30d(rows, db):
    # Origins are the last 48 hours: horizon h has a known truth for 48 - h of them.
    assert rows["horizon"].tolist() == HORIZONS
    assert rows["n"].tolist() == [LIVE_HOURS - h for h in HORIZONS]
    # The same MAE computed from the raw forecasts and the CSV, not through the view.
    live = db.query("SELECT origin_time, horizon, yhat FROM predictions "
                    "WHERE kind = 'live' AND exchange = 'binance' AND symbol = 'ETH-USDT'")
    truth = _truth()
    live["origin_time"] = live["origin_time"].map(utc)
    live["actual"] = [truth.get(o + pd.Timedelta(hours=int(h))) for o, h in zip(live["origin_time"], live["horizon"])]
    live["naive"] = [truth[o] for o in live["origin_time"]]
    known = live.dropna(subset=["actual"])
    for h in (1, 12, 24):
        at = known[known["horizon"] == h]
        row = rows[rows["horizon"] == h].iloc[0]
        mae, naive = (at["yhat"] - at["actual"]).abs().mean(), (at["naive"] - at["actual"]).abs().mean()
        assert math.isclose(row["mae"], mae, rel_tol=1e-9)
        assert math.isclose(row["naive_mae"], naive, rel_tol=1e-9)
        assert math.isclose(row["rmae"], mae / naive, rel_tol=1e-9)
        pct = ((at["yhat"] - at["actual"]).abs() / at["actual"]).mean() * 100
        assert math.isclose(row["mae_pct"], pct, rel_tol=1e-9)
    assert ((rows["coverage"].astype(float) >= 0) & (rows["coverage"].astype(float) <= 1)).all()
    assert (rows["interval_score"].astype(float) > 0).all()


def check_band_coverage_30d(rows, db):
    by_kind = rows.set_index("kind")
    assert rows["kind"].tolist() == ["backtest", "live"]
    assert by_kind.loc["live", "n"] == sum(LIVE_HOURS - h for h in HORIZONS)
    assert by_kind.loc["backtest", "n"] == 7 * 24  # 7 daily origins, all 24 hours known
    shares = rows[["coverage", "below_band", "above_band"]].astype(float).sum(axis=1)
    assert all(math.isclose(s, 1.0) for s in shares)
    assert (rows["band_width_pct"].astype(float) > 0).all()


def check_daily_accuracy(rows, db):
    days = [pd.Timestamp(str(d)).date() for d in rows["day"]]
    # Live targets run from the first live origin + 1 h (2023-12-30T01Z) to the newest candle.
    assert days == [pd.Timestamp("2023-12-30").date(), NEWEST.date()]
    assert rows["n"].sum() == sum(LIVE_HOURS - h for h in HORIZONS)


def check_forecast_vs_actual(rows, db):
    assert rows["horizon"].tolist() == HORIZONS
    origin = NEWEST - pd.Timedelta(hours=24)
    assert {utc(t) for t in rows["origin_time"]} == {origin}
    truth = _truth()
    assert rows["actual"].tolist() == [truth[origin + pd.Timedelta(hours=h)] for h in HORIZONS]
    assert (rows["naive"] == truth[origin]).all()


def check_model_history(rows, db):
    assert len(rows) == 3  # the first training, the retrain, and one up to a past origin
    assert rows["status"].iloc[0] in ("promoted", "retired")
    assert rows["status"].iloc[1] in ("promoted", "rejected")
    assert rows["status"].iloc[2] == "trained"  # train --until without --promote
    assert (rows["n_train"] > 0).all() and (rows["val_rmae"] > 0).all()
    assert (rows["device"] == "cpu").all()


def check_accuracy_by_model_run(rows, db):
    served = db.query("SELECT DISTINCT model_run_id FROM predictions WHERE kind = 'live' AND exchange = 'binance'")
    assert sorted(rows["model_run_id"]) == sorted(served["model_run_id"])
    assert rows["n"].sum() == sum(LIVE_HOURS - h for h in HORIZONS)
    assert (rows["live_rmae"] > 0).all()


def check_candle_gaps(rows, db):
    # Upbit maintenance in the slice (tests/data/README.md); the Binance slice has no gap.
    got = [(ex, utc(a), utc(b), int(n)) for ex, a, b, n in
           zip(rows["exchange"], rows["last_before_gap"], rows["first_after_gap"], rows["missing_candles"])]
    assert got == [("upbit", utc("2023-12-03T15Z"), utc("2023-12-03T21Z"), 5),
                   ("upbit", utc("2023-12-31T17Z"), utc("2023-12-31T21Z"), 3)]


def check_candle_lag(rows, db):
    assert list(zip(rows["exchange"], rows["symbol"])) == [("binance", "ETH-USDT"), ("upbit", "ETH-KRW")]
    assert {utc(t) for t in rows["newest_candle"]} == {NEWEST}
    now = datetime.now(timezone.utc)
    expected = int((now - NEWEST.to_pydatetime()) / timedelta(hours=1)) - 1
    assert all(abs(int(lag) - expected) <= 1 for lag in rows["lag_candles"])
    assert all(abs(float(h) - float(n)) < 1e-9 for h, n in zip(rows["lag_hours"], rows["lag_candles"]))  # 1h: equal
    assert rows["interval"].tolist() == ["1h", "1h"]


def check_job_failures_last_day(rows, db):
    assert list(zip(rows["job"], rows["exchange"], rows["symbol"])) == [("predict", "upbit", "ETH-KRW")]
    assert "no promoted model" in rows["message"].iloc[0]


def check_job_summary_last_day(rows, db):
    runs = {(j, e, st): n for j, e, st, n in zip(rows["job"], rows["exchange"], rows["status"], rows["runs"])}
    assert runs[("predict", "binance", "ok")] == LIVE_HOURS + 1  # and predict --at
    assert runs[("train", "binance", "ok")] == 3
    assert runs[("backtest", "binance", "ok")] == 2
    assert runs[("predict", "upbit", "failed")] == 1
    assert runs[("import", "binance", "ok")] == 1 + LIVE_HOURS
    assert (rows["avg_seconds"].astype(float) >= 0).all()


def check_accuracy_7d(rows, db):
    assert rows["horizon"].tolist() == HORIZONS
    # targets in the 168 hours up to the newest candle: the live origins' known ones
    assert rows["n"].tolist() == [LIVE_HOURS - h for h in HORIZONS]
    assert {utc(t) for t in rows["last_target"]} == {NEWEST}
    assert all(utc(t) > NEWEST - pd.Timedelta(days=7) for t in rows["first_target"])
    shares = rows[["coverage", "below_band", "above_band"]].astype(float).sum(axis=1)
    assert all(math.isclose(x, 1.0) for x in shares)
    assert (rows["better_than_naive"] + rows["same_as_naive"] + rows["worse_than_naive"] == rows["n"]).all()
    # the same figures from the view every row comes from
    scored = db.query("SELECT horizon, AVG(interval_score) AS i, AVG(inside_interval) AS c, "
                      "SUM(CASE WHEN vs_naive = 0 THEN 1 ELSE 0 END) AS same FROM forecast_accuracy "
                      "WHERE exchange = 'binance' AND symbol = 'ETH-USDT' AND interval = '1h' AND kind = 'live' "
                      "GROUP BY horizon ORDER BY horizon")
    assert (rows["interval_score"].astype(float) - scored["i"].astype(float)).abs().max() < 1e-6
    assert (rows["coverage"].astype(float) - scored["c"].astype(float)).abs().max() < 1e-12
    assert rows["same_as_naive"].tolist() == scored["same"].tolist()


def check_markets_side_by_side(rows, db):
    assert list(zip(rows["market"], rows["horizon"])) == [("binance:ETH-USDT", 1), ("binance:ETH-USDT", 24)]
    assert (rows["mae_pct"].astype(float) < 5).all() and (rows["rmae"].astype(float) > 0).all()


def check_forecast_history_of_origin(rows, db):
    assert {utc(t) for t in rows["origin_time"]} == {REFORECAST}
    assert len(rows) == 2 * 24  # the daemon's forecast, then predict --at --replace's
    assert rows["superseded_at"].isna().sum() == 24
    first, second = rows.iloc[0::2], rows.iloc[1::2]
    assert first["superseded_at"].notna().all() and second["superseded_at"].isna().all()
    assert (first["model_run_id"].to_numpy() != second["model_run_id"].to_numpy()).all()
    trained = db.query("SELECT id FROM model_runs WHERE status = 'trained'")["id"].tolist()
    assert set(second["model_run_id"]) == set(trained)


def check_backtest_runs(rows, db):
    assert len(rows) == 2 and rows["days"].tolist() == [7, 7] and rows["step"].tolist() == [24, 24]
    assert rows["n_origins"].tolist() == [7, 7] and (rows["code_version"].str.len() > 0).all()
    # the same fits twice: the same figures; the rows of the second are current
    assert rows["rmae"].iloc[0] == rows["rmae"].iloc[1]
    current = db.query("SELECT DISTINCT backtest_run_id FROM predictions WHERE kind = 'backtest'")
    assert current["backtest_run_id"].tolist() == [rows["id"].iloc[1]]
    kept = db.query("SELECT backtest_run_id, COUNT(*) AS n FROM prediction_history GROUP BY backtest_run_id")
    assert kept.set_index("backtest_run_id")["n"].to_dict().get(rows["id"].iloc[0]) == 7 * 24


def check_backtest_by_horizon(rows, db):
    assert rows["horizon"].tolist() == HORIZONS and (rows["n"] == 7).all()
    scored = db.query("SELECT horizon, AVG(abs_error) AS mae, AVG(inside_interval) AS c FROM forecast_accuracy "
                      "WHERE exchange = 'binance' AND symbol = 'ETH-USDT' AND interval = '1h' "
                      "AND kind = 'backtest' GROUP BY horizon ORDER BY horizon")
    assert (rows["mae"] - scored["mae"].astype(float)).abs().max() < 1e-9
    assert (rows["coverage"] - scored["c"].astype(float)).abs().max() < 1e-12
    assert (rows["vs_best_free"] > 0).all()


def check_latest_forecast_kst(rows, db):
    assert rows["horizon"].tolist() == HORIZONS
    origin = utc(db.query("SELECT MAX(origin_time) AS o FROM latest_forecast WHERE exchange = 'upbit'")["o"][0])
    # wall-clock time in Seoul: UTC + 9 hours, without an offset
    assert [pd.Timestamp(str(t)) for t in rows["target_kst"]] == [
        (origin + pd.Timedelta(hours=h + 9)).tz_localize(None) for h in HORIZONS]
    assert pd.Timestamp(str(rows["origin_kst"].iloc[0])) == (origin + pd.Timedelta(hours=9)).tz_localize(None)


CHECKS = {name.removeprefix("check_"): fn for name, fn in globals().items() if name.startswith("check_")}


def test_the_doc_has_ten_or_more_queries_each_for_both_databases_and_each_checked():
    queries = documented_queries()
    assert len(queries) >= 10
    for name, variants in queries.items():
        assert set(variants) == set(DIALECTS), f"{name} lacks a variant for {set(DIALECTS) - set(variants)}"
    assert set(queries) == set(CHECKS), "every documented query has a check here, and only those"


@pytest.mark.parametrize("name", sorted(documented_queries()))
def test_documented_query_runs_and_answers(bi, name):
    rows = bi.query(documented_queries()[name][bi.dialect])
    assert len(rows) > 0, f"{name} returned no rows on {bi.dialect}"
    CHECKS[name](rows, bi)


def test_every_table_and_view_column_is_documented(bi):
    text = DOC.read_text()
    for table in ("candles", "predictions", "prediction_history", "backtest_runs", "backtest_horizons",
                  "model_runs", "model_weights", "job_runs",
                  "latest_forecast", "forecast_accuracy", "forecast_history", "accuracy_7d", "forecast_long"):
        section = text.split(f"### {table}", 1)[1].split("\n### ", 1)[0]
        for column in bi.query(f"SELECT * FROM {table} WHERE 1 = 0").columns:
            assert re.search(rf"\b{column}\b", section), f"{table}.{column} is not documented"


def test_latest_forecast_gives_the_rows_of_its_plain_definition(bi):
    """Migration 0003 finds each market's newest origin by index probes; the rows must be those of
    the plain definition: the live rows of the newest live origin of each market."""
    plain = bi.query("""
        SELECT p.exchange, p.symbol, p.interval, p.origin_time, p.target_time, p.horizon,
               p.yhat, p.yhat_lower, p.yhat_upper, p.model_run_id
        FROM predictions p
        JOIN (SELECT exchange, symbol, interval, MAX(origin_time) AS origin_time FROM predictions
              WHERE kind = 'live' GROUP BY exchange, symbol, interval) n
          ON p.exchange = n.exchange AND p.symbol = n.symbol AND p.interval = n.interval
         AND p.origin_time = n.origin_time
        WHERE p.kind = 'live'
        ORDER BY p.exchange, p.symbol, p.horizon""")
    view = bi.query("SELECT * FROM latest_forecast ORDER BY exchange, symbol, horizon")
    assert len(view) == 2 * 24
    pd.testing.assert_frame_equal(view[plain.columns], plain)
    assert view["market"].tolist() == ["binance:ETH-USDT"] * 24 + ["upbit:ETH-KRW"] * 24
