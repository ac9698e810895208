"""The live band's coverage over the last week of one market, for /metrics and its alert."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.market import Market
from db.market_key import market_columns

# The view accuracy_7d (migration 0005): per horizon over the 7 days up to the market's newest
# candle; weighted by forecasts, that is the share of all scored live targets inside the band.
_COVERAGE = text("""
    SELECT SUM(coverage * n) / SUM(n), SUM(n) FROM accuracy_7d
    WHERE exchange = :exchange AND symbol = :symbol AND interval = :interval AND kind = 'live'
""")


def live_coverage_7d(*, session: Session, market: Market) -> tuple[float, int] | None:
    """(coverage, forecasts scored) of the market's live forecasts over its last 7 days; None
    while none is scored."""
    coverage, n = session.execute(_COVERAGE, market_columns(market)).one()
    return None if not n else (float(coverage), int(n))
