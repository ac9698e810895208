"""The schema is made by the project's Alembic migrations, on SQLite and on Postgres."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from db.engine import make_engine
from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.models import Base, Candle
from tests.helpers.cli import run_cli

CONTRACT_COLUMNS = {
    "candles": "exchange symbol interval open_time open high low close volume source ingested_at",
    "model_runs": "id exchange symbol interval status started_at finished_at train_start train_end n_train "
                  "n_val device epochs train_seconds val_mae val_naive_mae val_rmae val_coverage config error",
    "predictions": "id model_run_id exchange symbol interval kind origin_time target_time horizon yhat "
                   "yhat_lower yhat_upper created_at",
    "job_runs": "id job exchange symbol started_at finished_at status rows message",
    "latest_forecast": "exchange symbol interval origin_time target_time horizon yhat yhat_lower yhat_upper "
                       "model_run_id",
    "forecast_accuracy": "exchange symbol interval kind model_run_id origin_time target_time horizon yhat "
                         "yhat_lower yhat_upper actual naive error abs_error naive_abs_error inside_interval",
}


def test_db_upgrade_from_empty_twice_via_cli(db_url):
    for _ in range(2):
        result = run_cli("db", "upgrade", env={"FORECASTER_DATABASE_URL": db_url})
        assert result.returncode == 0, result.stderr
        assert f"at migration {head_revision()}" in result.stdout
    engine = make_engine(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_schema_has_every_contract_column_and_matches_models(migrated):
    _, engine, _ = migrated
    inspector = sa.inspect(engine)
    for table, columns in CONTRACT_COLUMNS.items():
        with engine.connect() as conn:
            got = list(conn.execute(sa.text(f"SELECT * FROM {table} WHERE 1 = 0")).keys())
        assert set(columns.split()) <= set(got), f"{table} lacks {set(columns.split()) - set(got)}"
    assert set(inspector.get_view_names()) >= {"latest_forecast", "forecast_accuracy"}
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], "models and migrations disagree: write a migration"


def test_downgrade_to_base_and_back(migrated):
    _, engine, _ = migrated
    downgrade(engine, "base")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_timestamps_round_trip_as_the_same_utc_instant(migrated):
    _, engine, sessions = migrated
    kst = timezone(timedelta(hours=9))
    t = datetime(2023, 12, 31, 23, 0, tzinfo=timezone.utc)
    with sessions() as s, s.begin():
        s.add(Candle(exchange="upbit", symbol="ETH-KRW", interval="1h", open_time=t.astimezone(kst),
                     open=1.0, high=2.0, low=0.5, close=1.5, volume=3.25, source="api", ingested_at=t))
    with sessions() as s:
        got = s.scalars(sa.select(Candle.open_time)).one()
        assert got == t and got.utcoffset() == timedelta(0)
        # A filter by an aware instant in another zone finds the same row.
        assert s.scalar(sa.select(sa.func.count()).select_from(Candle)
                        .where(Candle.open_time == t.astimezone(kst))) == 1
