"""indexes for the BI queries; latest_forecast without a scan of every live row

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

With a year of hourly live forecasts for five markets (~1 M prediction rows) the 0002 view
`latest_forecast` grouped every live row to find each market's newest origin (half a second on
Postgres). The same rows come from one index probe per market: the markets are read from
`model_runs` (a live forecast is only written with a model run, and model runs are never deleted),
and each market's newest live origin is a MAX over the unique key's index. Same columns, same rows.

`ix_predictions_market_kind_target` serves time windows of one kind (`forecast_accuracy` filtered
by market, kind and target_time, Grafana's time range); `ix_job_runs_started` serves "the last job
runs" and "failures since" without sorting the whole table. bench/query_speed.py shows the plans.
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Plain SQL both SQLite and Postgres accept (the contract: same columns on both).
LATEST_FORECAST = """
SELECT p.exchange, p.symbol, p.interval, p.origin_time, p.target_time, p.horizon,
       p.yhat, p.yhat_lower, p.yhat_upper, p.model_run_id
FROM (SELECT m.exchange, m.symbol, m.interval,
             (SELECT MAX(q.origin_time) FROM predictions q
              WHERE q.exchange = m.exchange AND q.symbol = m.symbol AND q.interval = m.interval
                AND q.kind = 'live') AS origin_time
      FROM (SELECT DISTINCT exchange, symbol, interval FROM model_runs) m) newest
JOIN predictions p
  ON p.exchange = newest.exchange AND p.symbol = newest.symbol AND p.interval = newest.interval
 AND p.kind = 'live' AND p.origin_time = newest.origin_time
"""

LATEST_FORECAST_0002 = """
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


def _replace_view(name: str, select: str) -> None:
    # Postgres: CREATE OR REPLACE keeps the grants (the BI role's SELECT) and dependent views.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE OR REPLACE VIEW {name} AS {select}")
    else:
        op.execute(f"DROP VIEW {name}")
        op.execute(f"CREATE VIEW {name} AS {select}")


def upgrade() -> None:
    op.create_index("ix_predictions_market_kind_target", "predictions",
                    ["exchange", "symbol", "interval", "kind", "target_time"])
    op.create_index("ix_job_runs_started", "job_runs", ["started_at"])
    _replace_view("latest_forecast", LATEST_FORECAST)


def downgrade() -> None:
    _replace_view("latest_forecast", LATEST_FORECAST_0002)
    op.drop_index("ix_job_runs_started", table_name="job_runs")
    op.drop_index("ix_predictions_market_kind_target", table_name="predictions")
