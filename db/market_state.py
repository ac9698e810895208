"""What the daemon's health and decisions read about one market, in one call: its newest candle,
newest live forecast origin, promoted model, failed trainings in a row and live band coverage."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from core.market import Market
from core.names import Job

from db.candles import newest_open_time
from db.job_runs import failures_in_a_row
from db.live_coverage import live_coverage_7d
from db.model_runs import promoted_run
from db.models import ModelRun
from db.predictions import newest_origin


@dataclass(frozen=True)
class MarketFacts:
    newest_candle: datetime | None
    newest_origin: datetime | None
    promoted: ModelRun | None
    train_failures: int  # failed trainings in a row, counted up to the caller's limit
    train_error: str | None  # the newest one's message
    coverage_7d: tuple[float, int] | None  # live band coverage over the last week, forecasts scored


def read_market_facts(*, session: Session, market: Market, train_failures_limit: int) -> MarketFacts:
    failures, error = failures_in_a_row(session=session, job=Job.TRAIN, market=market, limit=train_failures_limit)
    return MarketFacts(newest_open_time(session=session, market=market), newest_origin(session=session, market=market),
                       promoted_run(session=session, market=market), failures, error,
                       live_coverage_7d(session=session, market=market))
