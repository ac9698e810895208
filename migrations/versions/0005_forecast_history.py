"""forecast history, backtest runs, and accuracy people can read

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

- `prediction_history`: a forecast that a later one for the same key supersedes is copied here
  before it is overwritten (db/predictions.py), so `predictions` stays "the current forecast per
  key" and nothing forecast is ever lost.
- `backtest_runs` (settings, when, code version, summary) and `backtest_horizons` (its per-horizon
  table); `predictions.backtest_run_id` points a backtest row to the run that made it. Backtest rows
  written before this migration get one run per market standing for them (settings NULL).
- Views: `latest_forecast` gains the origin's close, the change and the band width in percent;
  `forecast_accuracy` gains scale-free errors, the interval score and `vs_naive` (a tie within
  1e-9 of the price is a tie, not a win); new `forecast_history` (every forecast ever made) and
  `accuracy_7d` (per market, kind and horizon over the 7 days up to the newest candle).

On Postgres the two existing views are replaced in place (new columns at the end), which keeps
their grants and anything built on them; on SQLite views are dropped and created again. The
downgrade drops what this adds (the history with it) and keeps every other row.
"""
import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# A tie: the model's and the naive forecast's absolute errors differ by at most 1e-9 of the price,
# far above floating-point noise (1e-16 relative) and far below a price tick.
LATEST_FORECAST = """
SELECT p.exchange, p.symbol, p.interval, p.origin_time, p.target_time, p.horizon,
       p.yhat, p.yhat_lower, p.yhat_upper, p.model_run_id,
       o.close AS origin_close,
       100.0 * (p.yhat - o.close) / o.close AS change_pct,
       100.0 * (p.yhat_upper - p.yhat_lower) / o.close AS band_width_pct
FROM (SELECT m.exchange, m.symbol, m.interval,
             (SELECT MAX(q.origin_time) FROM predictions q
              WHERE q.exchange = m.exchange AND q.symbol = m.symbol AND q.interval = m.interval
                AND q.kind = 'live') AS origin_time
      FROM (SELECT DISTINCT exchange, symbol, interval FROM model_runs) m) newest
JOIN predictions p
  ON p.exchange = newest.exchange AND p.symbol = newest.symbol AND p.interval = newest.interval
 AND p.kind = 'live' AND p.origin_time = newest.origin_time
LEFT JOIN candles o
  ON o.exchange = p.exchange AND o.symbol = p.symbol AND o.interval = p.interval
 AND o.open_time = p.origin_time
"""

FORECAST_ACCURACY = """
SELECT p.exchange, p.symbol, p.interval, p.kind, p.model_run_id, p.origin_time, p.target_time,
       p.horizon, p.yhat, p.yhat_lower, p.yhat_upper,
       a.close AS actual,
       o.close AS naive,
       p.yhat - a.close AS error,
       ABS(p.yhat - a.close) AS abs_error,
       ABS(o.close - a.close) AS naive_abs_error,
       CASE WHEN a.close >= p.yhat_lower AND a.close <= p.yhat_upper THEN 1 ELSE 0 END AS inside_interval,
       p.backtest_run_id,
       100.0 * ABS(p.yhat - a.close) / a.close AS abs_error_pct,
       100.0 * ABS(o.close - a.close) / a.close AS naive_abs_error_pct,
       100.0 * (p.yhat_upper - p.yhat_lower) / o.close AS band_width_pct,
       (p.yhat_upper - p.yhat_lower)
         + 10.0 * (CASE WHEN a.close < p.yhat_lower THEN p.yhat_lower - a.close ELSE 0 END
                   + CASE WHEN a.close > p.yhat_upper THEN a.close - p.yhat_upper ELSE 0 END) AS interval_score,
       CASE WHEN o.close IS NULL THEN NULL
            WHEN ABS(ABS(p.yhat - a.close) - ABS(o.close - a.close)) <= 1e-9 * a.close THEN 0
            WHEN ABS(p.yhat - a.close) < ABS(o.close - a.close) THEN 1
            ELSE -1 END AS vs_naive
FROM predictions p
JOIN candles a
  ON a.exchange = p.exchange AND a.symbol = p.symbol AND a.interval = p.interval
 AND a.open_time = p.target_time
LEFT JOIN candles o
  ON o.exchange = p.exchange AND o.symbol = p.symbol AND o.interval = p.interval
 AND o.open_time = p.origin_time
"""

FORECAST_HISTORY = """
SELECT id AS prediction_id, model_run_id, backtest_run_id, exchange, symbol, interval, kind,
       origin_time, target_time, horizon, yhat, yhat_lower, yhat_upper, created_at,
       {null_time} AS superseded_at
FROM predictions
UNION ALL
SELECT prediction_id, model_run_id, backtest_run_id, exchange, symbol, interval, kind,
       origin_time, target_time, horizon, yhat, yhat_lower, yhat_upper, created_at, superseded_at
FROM prediction_history
"""

# Aggregates of accuracy_7d over one market's scored forecasts p (target a, origin o).
_ACCURACY_FIGURES = """
       MIN(p.target_time) AS first_target, MAX(p.target_time) AS last_target,
       COUNT(*) AS n,
       AVG(ABS(p.yhat - a.close)) AS mae,
       AVG(ABS(o.close - a.close)) AS naive_mae,
       SUM(CASE WHEN o.close IS NOT NULL THEN ABS(p.yhat - a.close) END)
         / NULLIF(SUM(ABS(o.close - a.close)), 0) AS rmae,
       AVG(100.0 * ABS(p.yhat - a.close) / a.close) AS mae_pct,
       AVG(100.0 * ABS(o.close - a.close) / a.close) AS naive_mae_pct,
       AVG(CASE WHEN a.close >= p.yhat_lower AND a.close <= p.yhat_upper THEN 1.0 ELSE 0.0 END) AS coverage,
       AVG(CASE WHEN a.close < p.yhat_lower THEN 1.0 ELSE 0.0 END) AS below_band,
       AVG(CASE WHEN a.close > p.yhat_upper THEN 1.0 ELSE 0.0 END) AS above_band,
       AVG((p.yhat_upper - p.yhat_lower)
           + 10.0 * (CASE WHEN a.close < p.yhat_lower THEN p.yhat_lower - a.close ELSE 0 END
                     + CASE WHEN a.close > p.yhat_upper THEN a.close - p.yhat_upper ELSE 0 END)) AS interval_score,
       AVG(100.0 * ((p.yhat_upper - p.yhat_lower)
           + 10.0 * (CASE WHEN a.close < p.yhat_lower THEN p.yhat_lower - a.close ELSE 0 END
                     + CASE WHEN a.close > p.yhat_upper THEN a.close - p.yhat_upper ELSE 0 END)) / a.close)
         AS interval_score_pct,
       AVG(100.0 * (p.yhat_upper - p.yhat_lower) / o.close) AS band_width_pct,
       SUM(CASE WHEN ABS(ABS(p.yhat - a.close) - ABS(o.close - a.close)) > 1e-9 * a.close
                 AND ABS(p.yhat - a.close) < ABS(o.close - a.close) THEN 1 ELSE 0 END) AS better_than_naive,
       SUM(CASE WHEN ABS(ABS(p.yhat - a.close) - ABS(o.close - a.close)) <= 1e-9 * a.close
                THEN 1 ELSE 0 END) AS same_as_naive,
       SUM(CASE WHEN ABS(ABS(p.yhat - a.close) - ABS(o.close - a.close)) > 1e-9 * a.close
                 AND ABS(p.yhat - a.close) > ABS(o.close - a.close) THEN 1 ELSE 0 END) AS worse_than_naive
"""

# The markets with forecasts: every live row has a model run, every backtest row a backtest run,
# and both tables are small; the newest candle of each is one index probe.
_MARKETS = """
(SELECT k.exchange, k.symbol, k.interval,
        (SELECT MAX(c.open_time) FROM candles c
         WHERE c.exchange = k.exchange AND c.symbol = k.symbol AND c.interval = k.interval) AS newest
 FROM (SELECT exchange, symbol, interval FROM model_runs
       UNION SELECT exchange, symbol, interval FROM backtest_runs) k) m
"""

# Postgres: LATERAL hands each market's window to the index scans as a parameter (a plain join
# hashed the market's whole year: 200 ms at a year of forecasts). Origins lie at most 168 hours
# (the largest horizon) before a target, hence 14 days for the origin candles.
ACCURACY_7D_POSTGRES = f"""
SELECT m.exchange, m.symbol, m.interval, r.*
FROM {_MARKETS}
CROSS JOIN LATERAL (
    SELECT p.kind, p.horizon, {_ACCURACY_FIGURES}
    FROM predictions p
    JOIN candles a
      ON a.exchange = p.exchange AND a.symbol = p.symbol AND a.interval = p.interval
     AND a.open_time = p.target_time AND a.open_time > m.newest - INTERVAL '7 days'
    LEFT JOIN candles o
      ON o.exchange = p.exchange AND o.symbol = p.symbol AND o.interval = p.interval
     AND o.open_time = p.origin_time AND o.open_time > m.newest - INTERVAL '14 days'
    WHERE p.exchange = m.exchange AND p.symbol = m.symbol AND p.interval = m.interval
      AND p.target_time > m.newest - INTERVAL '7 days'
    GROUP BY p.kind, p.horizon) r
"""

# SQLite: times are UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'; the bound is written in that format so
# that `>` compares instants.
ACCURACY_7D_SQLITE = f"""
SELECT m.exchange, m.symbol, m.interval, p.kind, p.horizon, {_ACCURACY_FIGURES}
FROM {_MARKETS}
JOIN predictions p
  ON p.exchange = m.exchange AND p.symbol = m.symbol AND p.interval = m.interval
 AND p.target_time > strftime('%Y-%m-%d %H:%M:%S', m.newest, '-7 days') || '.000000'
JOIN candles a
  ON a.exchange = p.exchange AND a.symbol = p.symbol AND a.interval = p.interval
 AND a.open_time = p.target_time
LEFT JOIN candles o
  ON o.exchange = p.exchange AND o.symbol = p.symbol AND o.interval = p.interval
 AND o.open_time = p.origin_time
GROUP BY m.exchange, m.symbol, m.interval, p.kind, p.horizon
"""

# The definitions before this revision (0003 and 0002), for the downgrade.
LATEST_FORECAST_0003 = """
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

FORECAST_ACCURACY_0002 = """
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

# Backtest rows written before this revision: one run per market stands for them.
LEGACY_BACKTEST_RUNS = """
INSERT INTO backtest_runs (exchange, symbol, interval, started_at, finished_at, first_origin,
                           last_origin, n_origins, horizon)
SELECT exchange, symbol, interval, MIN(created_at), MAX(created_at), MIN(origin_time),
       MAX(origin_time), COUNT(DISTINCT origin_time), MAX(horizon)
FROM predictions WHERE kind = 'backtest'
GROUP BY exchange, symbol, interval
"""

POINT_LEGACY_ROWS = """
UPDATE predictions SET backtest_run_id =
    (SELECT b.id FROM backtest_runs b
     WHERE b.exchange = predictions.exchange AND b.symbol = predictions.symbol
       AND b.interval = predictions.interval)
WHERE kind = 'backtest'
"""

_FIGURES = ("mae", "naive_mae", "rmae", "coverage", "interval_score", "empirical_interval_score",
            "empirical_coverage", "ewma_interval_score", "ewma_coverage", "fhs_interval_score",
            "fhs_coverage", "best_free_interval_score")


def _float(name: str) -> sa.Column:
    return sa.Column(name, sa.Float(precision=53), nullable=True)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "backtest_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=True) for c in ("days", "step", "retrain_every", "train_hours",
                                                               "horizon")),
        sa.Column("config", sa.Text(), nullable=True),
        sa.Column("code_version", sa.String(64), nullable=True),
        sa.Column("device", sa.String(32), nullable=True),
        sa.Column("first_origin", UTCDateTime(), nullable=True),
        sa.Column("last_origin", UTCDateTime(), nullable=True),
        sa.Column("n_origins", sa.Integer(), nullable=True),
        sa.Column("n_fits", sa.Integer(), nullable=True),
        _float("fit_seconds"),
        sa.Column("n", sa.Integer(), nullable=True),
        *(_float(c) for c in _FIGURES),
        _float("ratio_vs_empirical"), _float("ratio_low"), _float("ratio_high"),
        sa.Column("ratio_days", sa.Integer(), nullable=True),
        sa.Column("band_sources", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_backtest_runs"),
    )
    op.create_index("ix_backtest_runs_market_started", "backtest_runs",
                    ["exchange", "symbol", "interval", "started_at"])
    op.create_table(
        "backtest_horizons",
        sa.Column("backtest_run_id", sa.Integer(), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        *(_float(c) for c in _FIGURES),
        sa.ForeignKeyConstraint(["backtest_run_id"], ["backtest_runs.id"], ondelete="CASCADE",
                                name="fk_backtest_horizons_backtest_run_id_backtest_runs"),
        sa.PrimaryKeyConstraint("backtest_run_id", "horizon", name="pk_backtest_horizons"),
    )
    op.create_table(
        "prediction_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("prediction_id", sa.Integer(), nullable=False),
        sa.Column("model_run_id", sa.Integer(), nullable=True),
        sa.Column("backtest_run_id", sa.Integer(), nullable=True),
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
        sa.Column("superseded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["model_run_id"], ["model_runs.id"], ondelete="SET NULL",
                                name="fk_prediction_history_model_run_id_model_runs"),
        sa.ForeignKeyConstraint(["backtest_run_id"], ["backtest_runs.id"], ondelete="SET NULL",
                                name="fk_prediction_history_backtest_run_id_backtest_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_history"),
    )
    op.create_index("ix_prediction_history_key", "prediction_history",
                    ["exchange", "symbol", "interval", "kind", "origin_time", "horizon"])
    op.create_index("ix_prediction_history_backtest_run_id", "prediction_history", ["backtest_run_id"])

    if _postgres():
        op.add_column("predictions", sa.Column("backtest_run_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_predictions_backtest_run_id_backtest_runs", "predictions", "backtest_runs",
                              ["backtest_run_id"], ["id"], ondelete="SET NULL")
    else:
        # SQLite adds a foreign key only by copying the table, which would break the views that
        # read it: they go first and come back below with their new columns.
        for name in ("latest_forecast", "forecast_accuracy"):
            op.execute(f"DROP VIEW {name}")
        with op.batch_alter_table("predictions") as batch:
            batch.add_column(sa.Column("backtest_run_id", sa.Integer(), nullable=True))
            batch.create_foreign_key("fk_predictions_backtest_run_id_backtest_runs", "backtest_runs",
                                     ["backtest_run_id"], ["id"], ondelete="SET NULL")
    op.execute(LEGACY_BACKTEST_RUNS)
    op.execute(POINT_LEGACY_ROWS)
    op.create_index("ix_predictions_backtest_run_id", "predictions", ["backtest_run_id"])

    if _postgres():
        op.execute(f"CREATE OR REPLACE VIEW latest_forecast AS {LATEST_FORECAST}")
        op.execute(f"CREATE OR REPLACE VIEW forecast_accuracy AS {FORECAST_ACCURACY}")
        op.execute("CREATE VIEW forecast_history AS "
                   + FORECAST_HISTORY.format(null_time="CAST(NULL AS TIMESTAMP WITH TIME ZONE)"))
        op.execute(f"CREATE VIEW accuracy_7d AS {ACCURACY_7D_POSTGRES}")
    else:
        op.execute(f"CREATE VIEW latest_forecast AS {LATEST_FORECAST}")
        op.execute(f"CREATE VIEW forecast_accuracy AS {FORECAST_ACCURACY}")
        op.execute("CREATE VIEW forecast_history AS " + FORECAST_HISTORY.format(null_time="NULL"))
        op.execute(f"CREATE VIEW accuracy_7d AS {ACCURACY_7D_SQLITE}")


def downgrade() -> None:
    for name in ("accuracy_7d", "forecast_history", "forecast_accuracy", "latest_forecast"):
        op.execute(f"DROP VIEW {name}")
    op.drop_index("ix_predictions_backtest_run_id", table_name="predictions")
    if _postgres():
        op.drop_constraint("fk_predictions_backtest_run_id_backtest_runs", "predictions", type_="foreignkey")
        op.drop_column("predictions", "backtest_run_id")
    else:
        # SQLite cannot drop a column that holds a foreign key: copy the table (its views are gone).
        with op.batch_alter_table("predictions") as batch:
            batch.drop_column("backtest_run_id")
    op.execute(f"CREATE VIEW latest_forecast AS {LATEST_FORECAST_0003}")
    op.execute(f"CREATE VIEW forecast_accuracy AS {FORECAST_ACCURACY_0002}")
    op.drop_index("ix_prediction_history_backtest_run_id", table_name="prediction_history")
    op.drop_index("ix_prediction_history_key", table_name="prediction_history")
    op.drop_table("prediction_history")
    op.drop_table("backtest_horizons")
    op.drop_index("ix_backtest_runs_market_started", table_name="backtest_runs")
    op.drop_table("backtest_runs")
