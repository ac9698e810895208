"""Which markets the store knows: any market with a candle, a model run, a backtest run or a job run."""
from __future__ import annotations

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from db.models import BacktestRun, Candle, JobRun, ModelRun


def stored_markets(*, session: Session) -> list[tuple[str, str]]:
    """(exchange, symbol) pairs, sorted."""
    query = union(
        select(Candle.exchange, Candle.symbol).distinct(),
        select(ModelRun.exchange, ModelRun.symbol).distinct(),
        select(BacktestRun.exchange, BacktestRun.symbol).distinct(),
        select(JobRun.exchange, JobRun.symbol).where(JobRun.exchange.is_not(None), JobRun.symbol.is_not(None))
        .distinct(),
    )
    return sorted((r[0], r[1]) for r in session.execute(query))
