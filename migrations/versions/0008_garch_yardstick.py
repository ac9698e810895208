"""backtest_runs and backtest_horizons: the seasonal GARCH-t FHS yardstick's figures beside the others

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

The GARCH yardstick (forecaster/garch.py) is printed and gated beside the empirical, EWMA and FHS
bands; its interval score and coverage are stored like theirs. Rows written before this migration
have NULL there (the yardstick did not exist), and `best_free_interval_score` kept its meaning: the
lowest yardstick score of that run.
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("backtest_runs", "backtest_horizons")
COLUMNS = ("garch_interval_score", "garch_coverage")


def upgrade() -> None:
    for table in TABLES:
        for column in COLUMNS:
            op.add_column(table, sa.Column(column, sa.Float(precision=53), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE (SQLite 3.35+ and Postgres): a batch copy would break views on SQLite.
    for table in TABLES:
        for column in COLUMNS:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
