"""The read-only role of db/readonly.sql reads every table and view and writes nothing, on the real
Postgres, run the way the docker stack runs it (on the empty database, before the migrations) and
the way an operator adds it later (after them); each way a role could write or get in the daemon's
way is tried as that role, also after it turned its own sessions read-write."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import psycopg
import pytest
from psycopg import errors

from tests.helpers.readonly_role import run_script

TABLES = ("candles", "job_runs", "model_runs", "model_weights", "predictions", "prediction_history",
          "backtest_runs", "backtest_horizons")
SERVICE_TABLES = ("candle_gaps", "job_locks")  # beyond the contract; readable too
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
    "create schema": "CREATE SCHEMA bi_scratch",
    "temporary table": "CREATE TEMP TABLE bi_scratch (x integer)",
    "large object": "SELECT lo_create(0)",
    "large object from bytes": "SELECT lo_from_bytea(0, 'stash')",
    "large object import": "SELECT lo_import('/etc/hostname')",
    # The daemon's locks: rows of job_locks locked FOR UPDATE; any row lock or a stronger table lock
    # would take them or block them.
    "lock a daemon lock": "SELECT * FROM job_locks FOR UPDATE SKIP LOCKED",
    "share-lock the locks": "SELECT * FROM job_locks FOR KEY SHARE",
    "lock the lock table": "LOCK TABLE job_locks IN EXCLUSIVE MODE",
}
MARKET = "binance:ETH-USDT"


@pytest.fixture(scope="module")
def shared_role(pg_server):
    """One migrated, filled database with the read-only role, for the attempts one by one."""
    name = f"forecaster_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{pg_server.rsplit('/', 1)[0]}/{name}"
    role = f"bi_{uuid.uuid4().hex[:10]}"
    migrate_and_fill(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    result = run_script(dsn, role)
    assert result.returncode == 0, result.stderr
    yield dsn, role
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.parametrize("attempt", list(WRITES))
def test_each_write_is_refused_in_a_session_the_role_turned_read_write(shared_role, attempt):
    dsn, role = shared_role
    with as_bi(dsn, role) as conn:
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(errors.InsufficientPrivilege):
            with conn.transaction():  # LOCK TABLE needs a transaction block
                conn.execute(WRITES[attempt])


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
    from db.models import (BacktestHorizon, BacktestRun, Candle, CandleGap, JobLock, JobRun, ModelRun, ModelWeights,
                           Prediction, PredictionHistory)

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
        s.add(CandleGap(exchange="binance", symbol="ETH-USDT", interval="1h", first_missing=t, last_missing=t, hours=1,
                        checks=1, first_checked_at=t1, last_checked_at=t1))
        for job in ("ingest", "train", "predict"):
            s.add(JobLock(job=job, exchange="binance", symbol="ETH-USDT", interval="1h"))
    engine.dispose()


def as_bi(dsn: str, role: str) -> psycopg.Connection:
    return psycopg.connect(dsn, user=role, password="s3cret'with quote", autocommit=True)


def assert_reads_everything(dsn: str, role: str, *, empty: tuple[str, ...] = ()) -> None:
    """Every table and view has rows the role reads (those in `empty` are only read)."""
    with as_bi(dsn, role) as conn:
        for name in TABLES + VIEWS:
            rows = conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]
            assert rows > 0 or name in empty, name
        for name in SERVICE_TABLES:
            conn.execute(f"SELECT COUNT(*) FROM {name}")


def assert_writes_nothing(dsn: str, role: str) -> None:
    with as_bi(dsn, role) as conn:
        # Its sessions start read-only...
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute(WRITES["insert"])
        # ...and a session that asks for read-write still lacks every privilege to write.
        conn.execute("SET default_transaction_read_only = off")
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        assert_every_write_is_refused(conn)
        # Granting is no error without the grant option, just a warning; and it grants nothing.
        conn.execute("GRANT SELECT ON candles TO PUBLIC")
        assert not conn.execute("SELECT has_table_privilege('public', 'candles', 'SELECT')").fetchone()[0]
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "1min"
        assert conn.execute("SHOW jit").fetchone()[0] == "off"


def assert_every_write_is_refused(conn: psycopg.Connection) -> None:
    """Each attempt fails for want of a privilege, not because the session is read-only."""
    for what, sql in WRITES.items():
        try:
            with conn.transaction():  # LOCK TABLE needs a transaction block
                conn.execute(sql)
        except errors.InsufficientPrivilege:
            continue
        except psycopg.Error as e:
            pytest.fail(f"{what}: refused for another reason than a missing privilege: {type(e).__name__}: {e}")
        pytest.fail(f"{what}: the read-only role could do it: {sql}")


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


def old_advisory_key(job: str, market: str) -> int:
    """The key the daemon's advisory locks used before job_locks: anyone could compute it."""
    import hashlib
    digest = hashlib.blake2b(f"forecaster:{job}:{market}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def test_the_role_cannot_take_block_or_break_the_daemons_locks_nor_use_up_connections(database):
    from daemon.pg_locks import PgJobLocks
    from db.engine import make_lock_engine
    from exchanges.base import parse_market

    dsn, url, role = database
    migrate_and_fill(url)
    result = run_script(dsn, role, connection_limit="3")
    assert result.returncode == 0, result.stderr
    lock_engine = make_lock_engine(url)
    locks = PgJobLocks(lock_engine)
    with as_bi(dsn, role) as bi, as_bi(dsn, role) as bi_reader:
        # What stopped every ingest before: the daemon's advisory keys, held by the BI role.
        for job in ("ingest", "train", "predict"):
            assert bi.execute("SELECT pg_try_advisory_lock(%s)", (old_advisory_key(job, MARKET),)).fetchone()[0]
        # A dashboard transaction left open on the lock table (the only lock SELECT may take).
        bi_reader.execute("BEGIN")
        bi_reader.execute("SELECT * FROM job_locks")
        bi_reader.execute("LOCK TABLE job_locks IN ACCESS SHARE MODE")
        try:
            for job in ("ingest", "train", "predict"):
                with locks.hold(job, parse_market(MARKET)) as held:
                    assert held, f"the daemon could not take its {job} lock"
                    assert held.lost() is None
                    # Nor can the role end the daemon's lock connection.
                    with psycopg.connect(dsn) as owner:
                        (pid,) = owner.execute("SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
                                               (f"forecaster % {job} {MARKET}",)).fetchone()
                    with pytest.raises(errors.InsufficientPrivilege):
                        bi.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    assert held.lost() is None
        finally:
            bi_reader.execute("ROLLBACK")
            locks.close()
            lock_engine.dispose()
        # Its connections are capped (3 here); it cannot lift the cap itself.
        with as_bi(dsn, role):
            with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
                as_bi(dsn, role)
        bi.execute("SET default_transaction_read_only = off")
        with pytest.raises(errors.InsufficientPrivilege):
            bi.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')


def test_changing_its_own_defaults_gains_the_role_nothing_and_the_script_puts_them_back(database):
    dsn, url, role = database
    migrate_and_fill(url)
    assert run_script(dsn, role).returncode == 0
    with as_bi(dsn, role) as conn:
        # PostgreSQL lets every role change its own session defaults; this one turns writes "on"...
        conn.execute("SET default_transaction_read_only = off")
        conn.execute("ALTER ROLE CURRENT_USER SET default_transaction_read_only = off")
        conn.execute("ALTER ROLE CURRENT_USER SET statement_timeout = 0")
    with as_bi(dsn, role) as conn:  # ...and its next session starts read-write, with no timeout,
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "off"
        assert_every_write_is_refused(conn)  # yet cannot write anything
    assert run_script(dsn, role).returncode == 0  # running the script again restores the defaults
    with as_bi(dsn, role) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "1min"


def test_the_script_fails_naming_what_the_role_could_still_do(database):
    dsn, url, role = database
    migrate_and_fill(url)
    with psycopg.connect(dsn, autocommit=True) as owner:  # a grant made by hand, outside the script
        owner.execute(f'CREATE ROLE "{role}" LOGIN')
        owner.execute(f'GRANT INSERT ON job_runs TO "{role}"')
    result = run_script(dsn, role)
    assert result.returncode != 0
    assert f"role {role} can still write to a table" in result.stderr
