"""model_runs, model_weights, predictions and the BI views

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Plain SQL both SQLite and Postgres accept. Time arithmetic is avoided: `target_time` is stored.
LATEST_FORECAST = """
CREATE VIEW latest_forecast AS
SELECT p.exchange, p.symbol, p.interval, p.origin_time, p.target_time, p.horizon,
       p.yhat, p.yhat_lower, p.yhat_upper, p.model_run_id
FROM predictions p
JOIN (SELECT exchange, symbol, interval, MAX(origin_time) AS origin_time
      FROM predictions WHERE kind = 'live'
      GROUP BY exchange, symbol, interval) newest
  ON p.exchange = newest.exchange AND p.symbol = newest.symbol
 AND p.interval = newest.interval AND p.origin_time = newest.origin_time
WHERE p.kind = 'live'
"""

FORECAST_ACCURACY = """
CREATE VIEW forecast_accuracy AS
SELECT p.exchange, p.symbol, p.interval, p.kind, p.model_run_id, p.origin_time, p.target_time,
       p.horizon, p.yhat, p.yhat_lower, p.yhat_upper,
       a.close AS actual,
       o.close AS naive,
       p.yhat - a.close AS error,
       ABS(p.yhat - a.close) AS abs_error,
       ABS(o.close - a.close) AS naive_abs_error,
       CASE WHEN a.close >= p.yhat_lower AND a.close <= p.yhat_upper THEN 1 ELSE 0 END AS inside_interval
FROM predictions p
JOIN candles a
  ON a.exchange = p.exchange AND a.symbol = p.symbol AND a.interval = p.interval
 AND a.open_time = p.target_time
LEFT JOIN candles o
  ON o.exchange = p.exchange AND o.symbol = p.symbol AND o.interval = p.interval
 AND o.open_time = p.origin_time
"""


def upgrade() -> None:
    op.create_table(
        "model_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("train_start", UTCDateTime(), nullable=True),
        sa.Column("train_end", UTCDateTime(), nullable=True),
        sa.Column("n_train", sa.Integer(), nullable=True),
        sa.Column("n_val", sa.Integer(), nullable=True),
        sa.Column("device", sa.String(32), nullable=True),
        sa.Column("epochs", sa.Integer(), nullable=True),
        sa.Column("train_seconds", sa.Float(53), nullable=True),
        sa.Column("val_mae", sa.Float(53), nullable=True),
        sa.Column("val_naive_mae", sa.Float(53), nullable=True),
        sa.Column("val_rmae", sa.Float(53), nullable=True),
        sa.Column("val_coverage", sa.Float(53), nullable=True),
        sa.Column("config", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_model_runs"),
    )
    op.create_index("ix_model_runs_market_status", "model_runs", ["exchange", "symbol", "interval", "status"])
    op.create_table(
        "model_weights",
        sa.Column("model_run_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["model_run_id"], ["model_runs.id"], ondelete="CASCADE",
                                name="fk_model_weights_model_run_id_model_runs"),
        sa.PrimaryKeyConstraint("model_run_id", name="pk_model_weights"),
    )
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_run_id", sa.Integer(), nullable=True),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("origin_time", UTCDateTime(), nullable=False),
        sa.Column("target_time", UTCDateTime(), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("yhat", sa.Float(53), nullable=False),
        sa.Column("yhat_lower", sa.Float(53), nullable=False),
        sa.Column("yhat_upper", sa.Float(53), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["model_run_id"], ["model_runs.id"], ondelete="SET NULL",
                                name="fk_predictions_model_run_id_model_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_predictions"),
        sa.UniqueConstraint("exchange", "symbol", "interval", "kind", "origin_time", "horizon",
                            name="uq_predictions_key"),
    )
    op.create_index("ix_predictions_target", "predictions", ["exchange", "symbol", "interval", "target_time"])
    op.execute(LATEST_FORECAST)
    op.execute(FORECAST_ACCURACY)


def downgrade() -> None:
    op.execute("DROP VIEW forecast_accuracy")
    op.execute("DROP VIEW latest_forecast")
    op.drop_index("ix_predictions_target", table_name="predictions")
    op.drop_table("predictions")
    op.drop_table("model_weights")
    op.drop_index("ix_model_runs_market_status", table_name="model_runs")
    op.drop_table("model_runs")
