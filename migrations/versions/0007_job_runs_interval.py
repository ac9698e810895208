"""job_runs: the interval of the market a run was for, so that a market's 1h and 1d runs stay apart

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

Every other table already keys markets by (exchange, symbol, interval). Runs recorded before this
migration were all of hourly markets: they get `1h`; runs of no market (none today) keep NULL. The
index of "the last runs of a job for a market" takes the interval too.
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_runs", sa.Column("interval", sa.String(8), nullable=True))
    op.execute("UPDATE job_runs SET interval = '1h' WHERE exchange IS NOT NULL")
    op.drop_index("ix_job_runs_market_job_started", table_name="job_runs")
    op.create_index("ix_job_runs_market_job_started", "job_runs",
                    ["exchange", "symbol", "interval", "job", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_job_runs_market_job_started", table_name="job_runs")
    op.create_index("ix_job_runs_market_job_started", "job_runs", ["exchange", "symbol", "job", "started_at"])
    # Plain ALTER TABLE (SQLite 3.35+ and Postgres): a batch copy would break views on SQLite.
    op.execute("ALTER TABLE job_runs DROP COLUMN interval")
