"""Writes and reads of `predictions`, the current forecast per key, and `prediction_history`.

Writing a key again supersedes its forecast: the row as it was is copied to `prediction_history`
first, in the caller's transaction, so nothing forecast is ever lost. Writing exactly the same
forecast again (same values, same model or backtest run) changes nothing, not even `created_at`.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.orm import Session

from core.market import Market
from core.names import ForecastKind
from db.market_key import market_columns, market_filter
from db.models import Prediction, PredictionHistory
from db.upsert import BATCH_ROWS, upsert

KEY = ("exchange", "symbol", "interval", "kind", "origin_time", "horizon")
_VALUES = ("model_run_id", "backtest_run_id", "target_time", "yhat", "yhat_lower", "yhat_upper", "created_at")
_COMPARED = ("model_run_id", "backtest_run_id", "target_time", "yhat", "yhat_lower", "yhat_upper")
_HISTORY_COLUMNS = ("model_run_id", "backtest_run_id", "exchange", "symbol", "interval", "kind", "origin_time",
                    "target_time", "horizon", "yhat", "yhat_lower", "yhat_upper", "created_at")


def write_predictions(forecast: pd.DataFrame, *, session: Session, market: Market, kind: str,
                      model_run_id: int | None, backtest_run_id: int | None = None) -> int:
    """Write a frame with origin_time, target_time, horizon, yhat, yhat_lower, yhat_upper; a
    forecast it supersedes goes to `prediction_history`. Returns the number of forecasts, which
    `predictions` now holds (rows already there with the same figures are left as they were)."""
    created = datetime.now(timezone.utc)
    rows = [
        {**market_columns(market), "kind": kind, "model_run_id": model_run_id,
         "backtest_run_id": backtest_run_id,
         "origin_time": pd.Timestamp(r.origin_time).to_pydatetime(),
         "target_time": pd.Timestamp(r.target_time).to_pydatetime(), "horizon": int(r.horizon),
         "yhat": float(r.yhat), "yhat_lower": float(r.yhat_lower), "yhat_upper": float(r.yhat_upper),
         "created_at": created}
        for r in forecast.itertuples(index=False)
    ]
    if not rows:
        return 0
    stored = _stored(session, market, kind, rows)
    changed, superseded = [], []
    for row in rows:
        old = stored.get((row["origin_time"], row["horizon"]))
        if old is None:
            changed.append(row)
        elif any(getattr(old, c) != row[c] for c in _COMPARED):
            changed.append(row)
            superseded.append(old.id)
    _keep_history(session, superseded, created)
    upsert(session, Prediction.__table__, changed, key=KEY, update=_VALUES)
    return len(rows)


def _stored(session: Session, market: Market, kind: str, rows: list[dict]) -> dict:
    """The stored rows of these keys, by (origin_time, horizon). On Postgres they are locked until
    the caller commits, so a concurrent writer of the same keys waits and then sees this one's rows."""
    origins = sorted({r["origin_time"] for r in rows})
    stmt = (select(Prediction.id, Prediction.origin_time, Prediction.horizon,
                   *(getattr(Prediction, c) for c in _COMPARED))
            .where(*market_filter(Prediction, market),
                   Prediction.kind == kind, Prediction.origin_time >= origins[0],
                   Prediction.origin_time <= origins[-1]))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    wanted = {(r["origin_time"], r["horizon"]) for r in rows}
    found = {}
    for r in session.execute(stmt):
        key = (r.origin_time, r.horizon)
        if key in wanted:
            found[key] = r
    return found


def _keep_history(session: Session, ids: list[int], superseded_at: datetime) -> None:
    """Copy these `predictions` rows to `prediction_history`, as they are now."""
    columns = [getattr(Prediction, c) for c in _HISTORY_COLUMNS]
    for start in range(0, len(ids), BATCH_ROWS):
        chunk = ids[start:start + BATCH_ROWS]
        source = select(Prediction.id, *columns, literal(superseded_at, PredictionHistory.superseded_at.type)) \
            .where(Prediction.id.in_(chunk))
        session.execute(insert(PredictionHistory).from_select(
            ["prediction_id", *_HISTORY_COLUMNS, "superseded_at"], source))


def newest_origin(*, session: Session, market: Market, kind: str = ForecastKind.LIVE) -> datetime | None:
    return session.scalar(select(func.max(Prediction.origin_time))
                          .where(*market_filter(Prediction, market), Prediction.kind == kind))


def origins_with_forecasts(*, session: Session, market: Market, kind: str,
                           since: datetime, until: datetime) -> set[datetime]:
    """Origins in [since, until] that have a forecast of this kind."""
    return set(session.scalars(select(Prediction.origin_time).distinct()
                               .where(*market_filter(Prediction, market), Prediction.kind == kind,
                                      Prediction.origin_time >= since, Prediction.origin_time <= until)))


def load_predictions(*, session: Session, market: Market, kind: str,
                     since: datetime | None = None) -> pd.DataFrame:
    stmt = select(Prediction.origin_time, Prediction.target_time, Prediction.horizon, Prediction.yhat,
                  Prediction.yhat_lower, Prediction.yhat_upper, Prediction.model_run_id).where(
        *market_filter(Prediction, market),
        Prediction.kind == kind)
    if since is not None:
        stmt = stmt.where(Prediction.origin_time >= since)
    rows = session.execute(stmt.order_by(Prediction.origin_time, Prediction.horizon)).all()
    return pd.DataFrame(rows, columns=["origin_time", "target_time", "horizon", "yhat", "yhat_lower",
                                       "yhat_upper", "model_run_id"])


def delete_live_before(*, session: Session, market: Market, before: datetime) -> int:
    """Delete a market's live forecasts whose target is older than `before` (one index range)."""
    return session.execute(delete(Prediction).where(
        *market_filter(Prediction, market),
        Prediction.kind == ForecastKind.LIVE, Prediction.target_time < before)).rowcount or 0
