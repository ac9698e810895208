"""The whole market key in the views, and a tidy long view for pandas users

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

A market is (exchange, symbol, interval): `upbit:ETH-KRW` (hourly, as the CLI writes it) and
`upbit:ETH-KRW@1d` are two markets. The views that show markets gain `market`, that key as one
text column (the CLI's and the metrics' spelling), so a BI tool can show and group by one column
without mixing a market's 1h and 1d rows:

- `latest_forecast` and `accuracy_7d` gain `market` (at the end: Postgres replaces them in place,
  keeping their grants).
- New `forecast_long`: every forecast, one row per market, kind, origin and target, in the long
  shape NeuralForecast and statsforecast users load into pandas (`unique_id`, `ds`, `cutoff`, `y`,
  and the band), with `y` null until the target candle closes.

The downgrade puts the views of 0005 back.
"""
import importlib.util
from pathlib import Path

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _revision_0005():
    path = Path(__file__).with_name("0005_forecast_history.py")
    spec = importlib.util.spec_from_file_location("forecaster_migration_0005", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# `binance:ETH-USDT` for hourly candles, `upbit:ETH-KRW@1d` otherwise (exchanges.base.Market).
def market_key(alias: str) -> str:
    return (f"{alias}.exchange || ':' || {alias}.symbol"
            f" || CASE WHEN {alias}.interval = '1h' THEN '' ELSE '@' || {alias}.interval END")


FORECAST_LONG = f"""
SELECT {market_key('p')} AS unique_id,
       p.exchange, p.symbol, p.interval, p.kind,
       p.target_time AS ds, p.origin_time AS cutoff, p.horizon,
       a.close AS y,
       p.yhat, p.yhat_lower, p.yhat_upper,
       p.model_run_id, p.backtest_run_id
FROM predictions p
LEFT JOIN candles a
  ON a.exchange = p.exchange AND a.symbol = p.symbol AND a.interval = p.interval
 AND a.open_time = p.target_time
"""


def _with_key(view_sql: str, alias: str) -> str:
    """The view's SELECT with `market` appended to its columns (before its first FROM)."""
    head, sep, tail = view_sql.partition("\nFROM ")
    return f"{head},\n       {market_key(alias)} AS market{sep}{tail}"


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    old = _revision_0005()
    latest = _with_key(old.LATEST_FORECAST, "p")
    if _postgres():
        op.execute(f"CREATE OR REPLACE VIEW latest_forecast AS {latest}")
        op.execute(f"CREATE OR REPLACE VIEW accuracy_7d AS {_with_key(old.ACCURACY_7D_POSTGRES, 'm')}")
    else:
        op.execute("DROP VIEW latest_forecast")
        op.execute("DROP VIEW accuracy_7d")
        op.execute(f"CREATE VIEW latest_forecast AS {latest}")
        op.execute(f"CREATE VIEW accuracy_7d AS {_with_key(old.ACCURACY_7D_SQLITE, 'm')}")
    op.execute(f"CREATE VIEW forecast_long AS {FORECAST_LONG}")


def downgrade() -> None:
    old = _revision_0005()
    op.execute("DROP VIEW forecast_long")
    # Postgres cannot drop a column with CREATE OR REPLACE: the views are made again.
    op.execute("DROP VIEW latest_forecast")
    op.execute("DROP VIEW accuracy_7d")
    op.execute(f"CREATE VIEW latest_forecast AS {old.LATEST_FORECAST}")
    op.execute(f"CREATE VIEW accuracy_7d AS "
               f"{old.ACCURACY_7D_POSTGRES if _postgres() else old.ACCURACY_7D_SQLITE}")
