"""The view latest_forecast for one market: what `forecaster forecast` prints."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.market import Market
from db.market_key import market_columns
from db.types import UTCDateTime

# Typed columns: SQLite hands a view's times back as text; these come back as aware UTC datetimes.
_LATEST = text("""
    SELECT origin_time, target_time, horizon, origin_close, yhat_lower, yhat, yhat_upper, change_pct,
           band_width_pct, model_run_id
    FROM latest_forecast
    WHERE exchange = :exchange AND symbol = :symbol AND interval = :interval
    ORDER BY horizon
""").columns(origin_time=UTCDateTime, target_time=UTCDateTime)


def latest_forecast_rows(*, session: Session, market: Market) -> list:
    """The market's newest live forecast, one row per horizon; empty without one."""
    return session.execute(_LATEST, market_columns(market)).all()
