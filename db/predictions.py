"""Writes and reads of `predictions`. Writing the same key again replaces the row."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from db.models import Prediction
from db.upsert import upsert

KEY = ("exchange", "symbol", "interval", "kind", "origin_time", "horizon")
_VALUES = ("model_run_id", "target_time", "yhat", "yhat_lower", "yhat_upper", "created_at")


def write_predictions(forecast: pd.DataFrame, *, session: Session, exchange: str, symbol: str, kind: str,
                      model_run_id: int | None) -> int:
    """Upsert a frame with origin_time, target_time, horizon, yhat, yhat_lower, yhat_upper."""
    created = datetime.now(timezone.utc)
    rows = [
        {"exchange": exchange, "symbol": symbol, "interval": "1h", "kind": kind, "model_run_id": model_run_id,
         "origin_time": pd.Timestamp(r.origin_time).to_pydatetime(),
         "target_time": pd.Timestamp(r.target_time).to_pydatetime(), "horizon": int(r.horizon),
         "yhat": float(r.yhat), "yhat_lower": float(r.yhat_lower), "yhat_upper": float(r.yhat_upper),
         "created_at": created}
        for r in forecast.itertuples(index=False)
    ]
    upsert(session, Prediction.__table__, rows, key=KEY, update=_VALUES)
    return len(rows)


def newest_origin(*, session: Session, exchange: str, symbol: str, kind: str = "live") -> datetime | None:
    return session.scalar(select(func.max(Prediction.origin_time))
                          .where(Prediction.exchange == exchange, Prediction.symbol == symbol,
                                 Prediction.kind == kind))


def load_predictions(*, session: Session, exchange: str, symbol: str, kind: str,
                     since: datetime | None = None) -> pd.DataFrame:
    stmt = select(Prediction.origin_time, Prediction.target_time, Prediction.horizon, Prediction.yhat,
                  Prediction.yhat_lower, Prediction.yhat_upper, Prediction.model_run_id).where(
        Prediction.exchange == exchange, Prediction.symbol == symbol, Prediction.kind == kind)
    if since is not None:
        stmt = stmt.where(Prediction.origin_time >= since)
    rows = session.execute(stmt.order_by(Prediction.origin_time, Prediction.horizon)).all()
    return pd.DataFrame(rows, columns=["origin_time", "target_time", "horizon", "yhat", "yhat_lower",
                                       "yhat_upper", "model_run_id"])


def delete_live_before(*, session: Session, exchange: str, symbol: str, before: datetime) -> int:
    """Delete a market's live forecasts whose target is older than `before` (one index range)."""
    return session.execute(delete(Prediction).where(
        Prediction.exchange == exchange, Prediction.symbol == symbol, Prediction.interval == "1h",
        Prediction.kind == "live", Prediction.target_time < before)).rowcount or 0
