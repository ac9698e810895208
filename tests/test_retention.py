"""FORECASTER_KEEP_FORECAST_DAYS: old live forecasts are deleted, recent ones and backtests kept;
0 keeps everything. On SQLite and Postgres."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pandas as pd
import sqlalchemy as sa

from db.predictions import write_predictions
from exchanges.base import parse_market
from jobs.retention import prune_live_forecasts
from tests.helpers.services import services_for

NOW = datetime(2023, 12, 31, 12, tzinfo=timezone.utc)
MARKETS = [parse_market("binance:ETH-USDT"), parse_market("upbit:ETH-KRW")]


def forecasts(origin: datetime) -> pd.DataFrame:
    return pd.DataFrame({"origin_time": origin, "target_time": [origin + timedelta(hours=h) for h in (1, 2)],
                         "horizon": [1, 2], "yhat": 1.0, "yhat_lower": 0.5, "yhat_upper": 1.5})


def test_old_live_forecasts_are_deleted_backtests_and_recent_ones_kept(migrated):
    _, _, sessions = migrated
    with sessions() as s, s.begin():
        for m in MARKETS:
            for days_ago in (30, 8, 6, 0):
                origin = NOW - timedelta(days=days_ago)
                for kind in ("live", "backtest"):
                    write_predictions(forecasts(origin), session=s, market=replace(m, interval="1h"),
                                      kind=kind, model_run_id=None)
    assert prune_live_forecasts(services_for(migrated), MARKETS, 0, now=NOW) == 0  # the default keeps all
    assert prune_live_forecasts(services_for(migrated), MARKETS, 7, now=NOW) == 2 * 2 * 2  # 30 and 8 days old, 2 rows each
    with sessions() as s:
        left = s.execute(sa.text("SELECT kind, count(*) FROM predictions GROUP BY kind ORDER BY kind")).all()
    assert left == [("backtest", 16), ("live", 8)]
