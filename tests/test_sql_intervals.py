"""One market served in 1h, 4h and 1d is three markets in every worked query of docs/sql.md and in
every view: no false gaps (a 1d market's consecutive days are no gap), no row mixing two intervals,
and each interval's own horizon (24 hours, 18 four-hour candles, 7 days). On SQLite and Postgres,
on candles of the real Binance series (tests/data) resampled as the exchange serves 4h and 1d."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from core.market import Market
from db.candles import write_candles
from db.job_runs import finish_job_run, start_job_run
from db.models import ModelRun
from db.predictions import write_predictions
from tests.conftest import BINANCE_CSV
from tests.test_sql_docs import documented_queries

KEYS = {"1h": "binance:ETH-USDT", "4h": "binance:ETH-USDT@4h", "1d": "binance:ETH-USDT@1d"}
HORIZON = {"1h": 24, "4h": 18, "1d": 7}  # each interval's default (forecaster/defaults.py)
STEP = {"1h": pd.Timedelta(hours=1), "4h": pd.Timedelta(hours=4), "1d": pd.Timedelta(days=1)}
ORIGINS = 30  # live origins per interval, the newest ones
MISSING_DAY = pd.Timestamp("2023-12-20", tz="UTC")  # one real gap, in the 1d series only


def _candles() -> dict[str, pd.DataFrame]:
    raw = pd.read_csv(BINANCE_CSV)
    hourly = raw.assign(ts=pd.to_datetime(raw.ts, utc=True)).set_index("ts").loc["2023-09-01":]
    hourly.index.name = "open_time"
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    out = {"1h": hourly}
    for interval, rule in (("4h", "4h"), ("1d", "1D")):
        out[interval] = hourly.resample(rule, label="left", closed="left").agg(agg).dropna()
    out["1d"] = out["1d"].drop(MISSING_DAY)
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store(request, tmp_path_factory):
    from db.engine import make_engine, make_session_factory
    from db.migrate import upgrade
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('intervals') / 'forecaster.db'}"
        admin = name = None
    else:
        import uuid

        import psycopg
        admin = request.getfixturevalue("pg_server")
        name = f"forecaster_iv_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    candles = _candles()
    with sessions() as s, s.begin():
        for interval, frame in candles.items():
            write_candles(frame, session=s, market=Market("binance", "ETH", "USDT", interval), source="csv")
            run = ModelRun(exchange="binance", symbol="ETH-USDT", interval=interval, status="promoted",
                           started_at=datetime(2023, 8, 1, tzinfo=timezone.utc))
            s.add(run)
            s.flush()
            for origin in frame.index[-ORIGINS:]:
                close = frame.loc[origin, "close"]
                h = pd.RangeIndex(1, HORIZON[interval] + 1)
                forecast = pd.DataFrame({"origin_time": origin, "target_time": [origin + STEP[interval] * k for k in h],
                                         "horizon": h, "yhat": close, "yhat_lower": close * 0.97,
                                         "yhat_upper": close * 1.03})
                write_predictions(forecast, session=s, market=Market("binance", "ETH", "USDT", interval),
                                  kind="live", model_run_id=run.id)
            job = start_job_run(session=s, job="ingest", market=Market("binance", "ETH", "USDT", interval))
            finish_job_run(session=s, run_id=job, status="failed", rows=0, message=f"{interval} failed")
    yield engine, candles
    engine.dispose()
    if name:
        import psycopg
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(store, name: str, interval: str = "1h") -> pd.DataFrame:
    """A worked query of docs/sql.md as documented, or for the same market's `interval`."""
    engine, _ = store
    sql = documented_queries()[name][engine.dialect.name]
    sql = sql.replace("interval = '1h'", f"interval = '{interval}'")
    with engine.connect() as conn:
        result = conn.execute(sa.text(sql))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def test_no_false_gaps_and_a_real_missing_day_is_one_missing_candle(store):
    rows = run(store, "candle_gaps")
    assert rows["interval"].tolist() == ["1d"]
    assert int(rows["missing_candles"].iloc[0]) == 1
    assert pd.Timestamp(str(rows["first_after_gap"].iloc[0])).tz_localize(None) == \
        (MISSING_DAY + pd.Timedelta(days=1)).tz_localize(None)


def test_the_lag_of_each_interval_is_counted_in_its_own_candles(store):
    _, candles = store
    rows = run(store, "candle_lag")
    assert rows["interval"].tolist() == ["1d", "1h", "4h"]  # one row each, never averaged together
    now = pd.Timestamp.now(tz="UTC")
    for interval, lag, hours in zip(rows["interval"], rows["lag_candles"], rows["lag_hours"]):
        expected = int((now - candles[interval].index[-1]) / STEP[interval]) - 1
        assert abs(int(lag) - expected) <= 1, interval
        assert abs(float(hours) - float(lag) * STEP[interval] / pd.Timedelta(hours=1)) < 1e-6


def test_every_market_key_has_its_own_first_and_last_horizon(store):
    rows = run(store, "latest_forecast_all")
    got = [(m, i, int(h)) for m, i, h in zip(rows["market"], rows["interval"], rows["horizon"])]
    assert got == [(KEYS["1d"], "1d", 1), (KEYS["1d"], "1d", 7), (KEYS["1h"], "1h", 1), (KEYS["1h"], "1h", 24),
                   (KEYS["4h"], "4h", 1), (KEYS["4h"], "4h", 18)]


@pytest.mark.parametrize("interval", ["1h", "4h", "1d"])
def test_the_newest_complete_forecast_uses_the_interval_s_own_horizon(store, interval):
    _, candles = store
    rows = run(store, "forecast_vs_actual", interval)
    assert [int(h) for h in rows["horizon"]] == list(range(1, HORIZON[interval] + 1))
    newest = candles[interval].index[-1]
    origin = pd.Timestamp(str(rows["origin_time"].iloc[0]))
    origin = origin.tz_localize("UTC") if origin.tzinfo is None else origin
    assert origin == newest - STEP[interval] * HORIZON[interval]
    assert rows["actual"].notna().all()


@pytest.mark.parametrize("interval", ["1h", "4h", "1d"])
def test_per_market_queries_read_only_their_interval(store, interval):
    accuracy = run(store, "accuracy_7d", interval)
    assert accuracy["horizon"].max() == HORIZON[interval]
    week = pd.Timedelta(days=7) / STEP[interval]
    assert accuracy["n"].max() <= week  # a week of targets of this interval, no other interval's rows
    latest = run(store, "latest_forecast", interval)
    assert len(latest) == HORIZON[interval]


def test_side_by_side_and_job_queries_keep_the_intervals_apart(store):
    rows = run(store, "markets_side_by_side")
    assert [(m, int(h)) for m, h in zip(rows["market"], rows["horizon"])] == [
        (KEYS["1d"], 1), (KEYS["1d"], 7), (KEYS["1h"], 1), (KEYS["1h"], 24), (KEYS["4h"], 1), (KEYS["4h"], 18)]
    summary = run(store, "job_summary_last_day")
    assert sorted(summary["interval"]) == ["1d", "1h", "4h"] and (summary["runs"] == 1).all()
    failures = run(store, "job_failures_last_day")
    assert sorted(failures["interval"]) == ["1d", "1h", "4h"]


def test_the_long_view_has_one_key_per_interval_and_the_truth_where_known(store):
    engine, candles = store
    with engine.connect() as conn:
        long = pd.read_sql(sa.text("SELECT * FROM forecast_long WHERE kind = 'live'"), conn)
    assert set(long["unique_id"]) == set(KEYS.values())
    for interval, key in KEYS.items():
        mine = long[long["unique_id"] == key]
        assert (mine["interval"] == interval).all() and len(mine) == ORIGINS * HORIZON[interval]
        known = mine[mine["y"].notna()]
        ds = pd.to_datetime(known["ds"].astype(str), utc=True)
        assert (ds <= candles[interval].index[-1]).all() and len(known) > 0
        assert (known["y"].to_numpy() == candles[interval].loc[ds, "close"].to_numpy()).all()


# --- the Grafana dashboard on the same store (Postgres: Grafana's data source) ----------------------

def _raw(engine, sql: str, fetch: str = "frame"):
    """SQL as Grafana sends it, through the plain driver (no parameters: `%` is a literal)."""
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute(sql)
        rows = cur.fetchall() if cur.description else []
        columns = [d[0] for d in cur.description] if cur.description else []
        conn.commit()
    finally:
        conn.close()
    return pd.DataFrame(rows, columns=columns) if fetch == "frame" else rows


def _dashboard_sql(store, sql: str, markets: list[str]) -> pd.DataFrame:
    """A dashboard query as Grafana sends it with `markets` chosen (a quoted list: multi-select)."""
    import json

    from tests.test_deploy import DASHBOARD, expand
    engine, candles = store
    newest = candles["1h"].index[-1].to_pydatetime()
    time_range = (newest - pd.Timedelta(days=7), newest + pd.Timedelta(days=1))
    values = {"market": ",".join(f"'{m}'" for m in markets), "kind": "live"}
    for variable in json.loads(DASHBOARD.read_text())["templating"]["list"]:
        if variable["name"] not in values:
            values[variable["name"]] = str(_raw(engine, expand(variable["query"], values, time_range), "rows")[0][0])
    return _raw(engine, expand(sql, values, time_range))


def _panels(repeated: bool):
    import json

    from tests.test_deploy import DASHBOARD
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        if (panel.get("repeat") == "market") == repeated:
            yield panel


@pytest.mark.parametrize("interval", ["1h", "4h", "1d"])
def test_each_per_market_panel_shows_that_interval_only(store, interval):
    engine, candles = store
    if engine.dialect.name != "postgresql":
        pytest.skip("the dashboard reads Postgres")
    key = KEYS[interval]
    for panel in _panels(repeated=True):
        for target in panel["targets"]:
            if "rawSql" not in target:
                continue
            rows = _dashboard_sql(store, target["rawSql"], [key])
            if "Backtest" in panel["title"]:
                assert rows.empty  # the store has no backtest
                continue
            assert not rows.empty, (panel["title"], key)
            if "steps ahead" in rows.columns:  # one bar or row per horizon of this interval
                assert sorted(int(h) for h in rows["steps ahead"]) == list(range(1, HORIZON[interval] + 1))
            if "forecast" in rows.columns:  # the origin, then each step of the newest forecast
                assert len(rows) == HORIZON[interval] + 1
                times = pd.to_datetime(rows["time"], utc=True)
                assert (times.diff().dropna() == STEP[interval]).all()
            if "close" in rows.columns:  # this interval's candles, not the others'
                times = pd.to_datetime(rows["time"], utc=True)
                assert set(times) <= set(candles[interval].index)


def test_the_all_markets_panels_and_annotations_keep_each_key_apart(store):
    import json

    from tests.test_deploy import DASHBOARD
    engine, candles = store
    if engine.dialect.name != "postgresql":
        pytest.skip("the dashboard reads Postgres")
    everything = list(KEYS.values())
    panel = {p["title"]: p for p in _panels(repeated=False)}
    lag = _dashboard_sql(store, panel["Candle lag"]["targets"][0]["rawSql"], everything)
    assert sorted(lag["market"]) == sorted(everything)
    now = pd.Timestamp.now(tz="UTC")
    for key, n in zip(lag["market"], lag["lag (candles)"]):
        interval = next(i for i, k in KEYS.items() if k == key)
        assert abs(int(n) - (int((now - candles[interval].index[-1]) / STEP[interval]) - 1)) <= 1, key
    jobs = _dashboard_sql(store, panel["Last job runs"]["targets"][0]["rawSql"], everything[:2])
    assert sorted(jobs["market"]) == sorted(everything[:2])  # the chosen keys only
    # a promotion of each market, shown as an annotation of the chosen one only
    _raw(engine, "UPDATE model_runs SET finished_at = started_at + interval '1 hour'", "rows")
    annotation = json.loads(DASHBOARD.read_text())["annotations"]["list"][0]["target"]["rawSql"]
    newest = candles["1h"].index[-1].to_pydatetime()
    from tests.test_deploy import expand
    sql = expand(annotation, {"market": f"'{KEYS['1d']}'"}, (pd.Timestamp("2023-07-01", tz="UTC"), newest))
    rows = _raw(engine, sql, "rows")
    assert len(rows) == 1 and rows[0][2] == KEYS["1d"] and KEYS["1d"] in rows[0][1]
