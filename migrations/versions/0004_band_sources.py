"""model_runs: which band each model serves, and its interval score next to the model-free bands'

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

A model serves, per horizon, the band that scored best out of sample on its validation slice: its
LSTM's, its volatility model's, or a model-free yardstick's (forecaster/train.py). `band_source`
says which, as runs of horizons (`lstm 1-8, fhs 9-24`); `val_interval_score` is the served band's
interval score on the validation slice and `val_free_interval_score` the best model-free band's at
each horizon, averaged over horizons, both in the quote currency. Older rows keep NULL.
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_runs") as batch:
        batch.add_column(sa.Column("band_source", sa.Text(), nullable=True))
        batch.add_column(sa.Column("val_interval_score", sa.Float(precision=53), nullable=True))
        batch.add_column(sa.Column("val_free_interval_score", sa.Float(precision=53), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE (SQLite 3.35+ and Postgres): a batch copy of the table would break the views
    # that read model_runs on SQLite.
    for column in ("val_free_interval_score", "val_interval_score", "band_source"):
        op.execute(f"ALTER TABLE model_runs DROP COLUMN {column}")
