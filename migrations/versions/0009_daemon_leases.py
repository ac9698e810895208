"""daemon_leases: each daemon's lease on the job locks it holds, renewed while it runs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

A job lock (a row of job_locks locked on a connection of its own) lives as long as its connection,
and a frozen daemon (SIGSTOP, a paused VM) keeps its connections: the kernel still answers the
keepalives. So each daemon renews a lease here while it runs; another daemon that finds a lease
expired ends that daemon's lock connections, which frees its claims (jobs/runtime/leases.py).
"""
import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daemon_leases",
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("renewed_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner"),
    )


def downgrade() -> None:
    op.drop_table("daemon_leases")
