"""candle_gaps: hours the exchange was asked for and lacked

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

`candle_gaps` lets ingest repair holes in the stored candles (it re-fetches missing hours) without
asking the exchange forever for hours it never had: a run of missing hours is confirmed after the
exchange lacked it twice, the second time a day or more after those hours closed.
"""
import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
