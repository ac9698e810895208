"""Migration 0005 on a database that has rows in every table: the upgrade loses nothing and points
the old backtest rows to a run standing for them; the downgrade keeps every row of the tables it
found and leaves working views; both on SQLite and on Postgres."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from db.engine import make_engine
from db.migrate import current_revision, downgrade, upgrade
from db.types import UTCDateTime

T0 = datetime(2023, 12, 31, 20, tzinfo=timezone.utc)
H = timedelta(hours=1)
OLD_TABLES = ("candles", "job_runs", "model_runs", "model_weights", "predictions")
VIEWS = ("latest_forecast", "forecast_accuracy")


def _table(name: str, *columns: str) -> sa.TableClause:
    """A table of revision 0004 as plain columns; times bound as the service stores them."""
    return sa.table(name, *(sa.column(c, UTCDateTime() if c.endswith(("_time", "_at", "_start", "_end"))
                                      else None) for c in columns))


def _fill_0004(conn) -> None:
    candles = _table("candles", "exchange", "symbol", "interval", "open_time", "open", "high", "low", "close",
                     "volume", "source", "ingested_at")
    conn.execute(sa.insert(candles), [
        {"exchange": "binance", "symbol": "ETH-USDT", "interval": "1h", "open_time": T0 + i * H, "open": 2300.0 + i,
         "high": 2310.0 + i, "low": 2290.0 + i, "close": 2301.0 + i, "volume": 5.0, "source": "csv",
         "ingested_at": T0} for i in range(3)])
    conn.execute(sa.insert(_table("model_runs", "id", "exchange", "symbol", "interval", "status", "started_at",
                                  "train_end", "val_mae", "band_source")),
                 [{"id": 1, "exchange": "binance", "symbol": "ETH-USDT", "interval": "1h", "status": "promoted",
                   "started_at": T0, "train_end": T0, "val_mae": 1.5, "band_source": "volatility 1-2"}])
    conn.execute(sa.insert(_table("model_weights", "model_run_id", "format", "weights", "created_at")),
                 [{"model_run_id": 1, "format": "safetensors", "weights": b"\0\1", "created_at": T0}])
    predictions = _table("predictions", "model_run_id", "exchange", "symbol", "interval", "kind", "origin_time",
                         "target_time", "horizon", "yhat", "yhat_lower", "yhat_upper", "created_at")
    conn.execute(sa.insert(predictions), [
        {"model_run_id": 1 if kind == "live" else None, "exchange": "binance", "symbol": "ETH-USDT",
         "interval": "1h", "kind": kind, "origin_time": T0, "target_time": T0 + h * H, "horizon": h,
         "yhat": 2301.0, "yhat_lower": 2290.0, "yhat_upper": 2312.0, "created_at": T0 + H}
        for kind in ("live", "backtest") for h in (1, 2)])
    conn.execute(sa.insert(_table("job_runs", "job", "exchange", "symbol", "started_at", "status")),
                 [{"job": "backtest", "exchange": "binance", "symbol": "ETH-USDT", "started_at": T0, "status": "ok"}])


def _counts(conn, names) -> dict[str, int]:
    return {n: conn.execute(sa.text(f"SELECT COUNT(*) FROM {n}")).scalar() for n in names}


def test_0005_keeps_every_row_both_ways(db_url):
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0004")
        with engine.begin() as conn:
            _fill_0004(conn)
        with engine.connect() as conn:
            before = _counts(conn, OLD_TABLES + VIEWS)
        assert before == {"candles": 3, "job_runs": 1, "model_runs": 1, "model_weights": 1, "predictions": 4,
                          "latest_forecast": 2, "forecast_accuracy": 4}

        upgrade(engine)
        with engine.connect() as conn:
            assert _counts(conn, OLD_TABLES + VIEWS) == before
            legacy = conn.execute(sa.text("SELECT id, days, config, n_origins, horizon FROM backtest_runs")).all()
            assert [tuple(r)[1:] for r in legacy] == [(None, None, 1, 2)]  # settings never recorded
            pointed = conn.execute(sa.text("SELECT kind, backtest_run_id FROM predictions ORDER BY kind")).all()
            assert {tuple(r) for r in pointed} == {("backtest", legacy[0][0]), ("live", None)}
            assert conn.execute(sa.text("SELECT origin_close, change_pct FROM latest_forecast")).all() == \
                [(2301.0, 0.0)] * 2
            assert _counts(conn, ("forecast_history", "accuracy_7d")) == {"forecast_history": 4, "accuracy_7d": 4}
            assert conn.execute(sa.text("SELECT band_source FROM model_runs")).scalar() == "volatility 1-2"

        downgrade(engine, "0004")
        assert current_revision(engine) == "0004"
        with engine.connect() as conn:
            assert _counts(conn, OLD_TABLES + VIEWS) == before
            columns = conn.execute(sa.text("SELECT * FROM predictions WHERE 1 = 0")).keys()
            assert "backtest_run_id" not in columns
            assert sa.inspect(conn).has_table("prediction_history") is False
        upgrade(engine)
        with engine.connect() as conn:
            assert _counts(conn, OLD_TABLES) == {k: before[k] for k in OLD_TABLES}
    finally:
        engine.dispose()
