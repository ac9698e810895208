"""The read-only role of db/readonly.sql reads every table and view and writes nothing, on the real
Postgres, run the way the docker stack runs it (on the empty database, before the migrations) and
the way an operator adds it later (after them)."""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from datetime import datetime, timezone

import psycopg
import pytest
from psycopg import errors

from tests.conftest import REPO

SCRIPT = REPO / "db" / "readonly.sql"
TABLES = ("candles", "job_runs", "model_runs", "model_weights", "predictions", "prediction_history",
          "backtest_runs", "backtest_horizons")
VIEWS = ("latest_forecast", "forecast_accuracy", "forecast_history", "accuracy_7d")
WRITES = {
    "insert": "INSERT INTO job_runs (job, started_at, status) VALUES ('ingest', now(), 'ok')",
    "update": "UPDATE candles SET close = 0",
    "delete": "DELETE FROM predictions",
    "truncate": "TRUNCATE job_runs",
    "create table": "CREATE TABLE bi_scratch (x integer)",
    "create view": "CREATE VIEW bi_scratch AS SELECT 1 AS x",
    "alter table": "ALTER TABLE candles ADD COLUMN note text",
    "create index": "CREATE INDEX bi_scratch ON candles (close)",
    "drop view": "DROP VIEW latest_forecast",
    "drop table": "DROP TABLE model_weights",
    "sequence": "SELECT nextval(pg_get_serial_sequence('predictions', 'id'))",
}


def _psql() -> str:
    psql = shutil.which("psql")
    if psql is None:
        if os.environ.get("CI"):
            pytest.fail("psql must be installed in CI to run db/readonly.sql")
        pytest.skip("psql is not installed")
    return psql


def run_script(dsn: str, user: str | None, password: str | None = "s3cret'with quote"):
    env = {k: v for k, v in os.environ.items() if k not in ("BI_USER", "BI_PASSWORD")}
    env.update({k: v for k, v in (("BI_USER", user), ("BI_PASSWORD", password)) if v is not None})
    return subprocess.run([_psql(), dsn, "-X", "-q", "-f", str(SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def database(pg_url):
    """(libpq URL as the owner, SQLAlchemy URL, read-only role name); the role is dropped afterwards."""
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    role = f"bi_{uuid.uuid4().hex[:10]}"
    yield dsn, pg_url, role
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def migrate_and_fill(url: str) -> None:
    """The project's migrations and one row in each table, through the models."""
    from db.engine import make_engine, make_session_factory
    from db.migrate import upgrade
    from db.models import (BacktestHorizon, BacktestRun, Candle, JobRun, ModelRun, ModelWeights, Prediction,
                           PredictionHistory)

    engine = make_engine(url)
    upgrade(engine)
    t = datetime(2023, 12, 31, 22, tzinfo=timezone.utc)
    t1 = datetime(2023, 12, 31, 23, tzinfo=timezone.utc)
    with make_session_factory(engine)() as s, s.begin():
        for ot, close in ((t, 2300.0), (t1, 2310.0)):
            s.add(Candle(exchange="binance", symbol="ETH-USDT", interval="1h", open_time=ot, open=close,
                         high=close, low=close, close=close, volume=1.0, source="csv", ingested_at=t1))
        run = ModelRun(exchange="binance", symbol="ETH-USDT", interval="1h", status="promoted", started_at=t1)
        s.add(run)
        s.flush()
        s.add(ModelWeights(model_run_id=run.id, format="safetensors", weights=b"\0", created_at=t1))
        s.add(Prediction(model_run_id=run.id, exchange="binance", symbol="ETH-USDT", interval="1h", kind="live",
                         origin_time=t, target_time=t1, horizon=1, yhat=2305.0, yhat_lower=2290.0,
                         yhat_upper=2320.0, created_at=t1))
        s.add(JobRun(job="predict", exchange="binance", symbol="ETH-USDT", started_at=t1, status="ok"))
        backtest = BacktestRun(exchange="binance", symbol="ETH-USDT", interval="1h", started_at=t1, finished_at=t1)
        s.add(backtest)
        s.flush()
        s.add(BacktestHorizon(backtest_run_id=backtest.id, horizon=1, n=1))
        s.add(PredictionHistory(prediction_id=1, model_run_id=run.id, exchange="binance", symbol="ETH-USDT",
                                interval="1h", kind="live", origin_time=t, target_time=t1, horizon=1, yhat=2300.0,
                                yhat_lower=2280.0, yhat_upper=2320.0, created_at=t, superseded_at=t1))
    engine.dispose()


def as_bi(dsn: str, role: str) -> psycopg.Connection:
    return psycopg.connect(dsn, user=role, password="s3cret'with quote", autocommit=True)


def assert_reads_everything(dsn: str, role: str, *, empty: tuple[str, ...] = ()) -> None:
    """Every table and view has rows the role reads (those in `empty` are only read)."""
    with as_bi(dsn, role) as conn:
        for name in TABLES + VIEWS:
            rows = conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]
            assert rows > 0 or name in empty, name


def assert_writes_nothing(dsn: str, role: str) -> None:
    with as_bi(dsn, role) as conn:
        # Its sessions start read-only...
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute(WRITES["insert"])
        # ...and a session that asks for read-write still lacks every privilege to write.
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        for what, sql in WRITES.items():
            with pytest.raises((errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction)) as info:
                conn.execute(sql)
            assert isinstance(info.value, errors.InsufficientPrivilege), f"{what}: {info.value}"
        # Granting is no error without the grant option, just a warning; and it grants nothing.
        conn.execute("GRANT SELECT ON candles TO PUBLIC")
        assert not conn.execute("SELECT has_table_privilege('public', 'candles', 'SELECT')").fetchone()[0]
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "1min"
        assert conn.execute("SHOW jit").fetchone()[0] == "off"


def test_role_made_before_the_migrations_like_the_docker_stack_reads_all_and_writes_nothing(database):
    dsn, url, role = database
    result = run_script(dsn, role)
    assert result.returncode == 0, result.stderr
    migrate_and_fill(url)
    assert_reads_everything(dsn, role)
    assert_writes_nothing(dsn, role)
    with psycopg.connect(dsn) as conn:  # the owner's data is untouched
        assert conn.execute("SELECT close FROM candles ORDER BY open_time").fetchall() == [(2300.0,), (2310.0,)]


def test_role_added_later_to_a_migrated_database_twice_and_survives_migrations(database):
    from db.engine import make_engine
    from db.migrate import downgrade, upgrade

    dsn, url, role = database
    migrate_and_fill(url)
    for _ in range(2):
        result = run_script(dsn, role)
        assert result.returncode == 0, result.stderr
    assert_reads_everything(dsn, role)
    # Views and tables a migration drops and creates again stay readable (default privileges).
    engine = make_engine(url)
    downgrade(engine, "0002")
    upgrade(engine)
    engine.dispose()
    # the tables of migration 0005 come back empty: a downgrade drops what they held
    assert_reads_everything(dsn, role, empty=("prediction_history", "backtest_runs", "backtest_horizons"))
    assert_writes_nothing(dsn, role)


@pytest.mark.parametrize("missing", ["BI_USER", "BI_PASSWORD"])
def test_script_refuses_to_run_without_name_or_password(database, missing):
    dsn, _, role = database
    result = run_script(dsn, None if missing == "BI_USER" else role,
                        None if missing == "BI_PASSWORD" else "pw")
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None
