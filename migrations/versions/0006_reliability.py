"""candle_gaps: hours the exchange was asked for and lacked; job_locks: one lock row per job and market

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

`job_locks` replaces the advisory locks of jobs/runtime/locks.py: a daemon runs a job for a market while it
holds that row's lock (FOR UPDATE, which needs the UPDATE privilege the read-only BI role lacks;
anyone could take an advisory lock on the daemon's computable keys); `done_for` records the
schedule slot whose run finished, so that several daemons do each slot's work once. `candle_gaps` lets ingest repair holes in the stored candles (it re-fetches missing hours) without
asking the exchange forever for hours it never had: a run of missing hours is confirmed after the
exchange lacked it twice, the second time a day or more after those hours closed.
"""
import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_locks",
        sa.Column("job", sa.String(16), nullable=False),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("done_for", UTCDateTime(), nullable=True),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("done_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("job", "exchange", "symbol", "interval", name="pk_job_locks"),
    )
    op.create_table(
        "candle_gaps",
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("first_missing", UTCDateTime(), nullable=False),
        sa.Column("last_missing", UTCDateTime(), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("first_checked_at", UTCDateTime(), nullable=False),
        sa.Column("last_checked_at", UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("exchange", "symbol", "interval", "first_missing", name="pk_candle_gaps"),
    )


def downgrade() -> None:
    op.drop_table("candle_gaps")
    op.drop_table("job_locks")
