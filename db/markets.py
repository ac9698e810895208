"""Which markets the store knows: any market with a candle, a model run, a backtest run or a job run."""
from __future__ import annotations

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from core.market import Market
from db.models import BacktestRun, Candle, JobRun, ModelRun


def stored_markets(*, session: Session) -> list[Market]:
    """The market keys, sorted by exchange, symbol and interval."""
    query = union(
        select(Candle.exchange, Candle.symbol, Candle.interval).distinct(),
        select(ModelRun.exchange, ModelRun.symbol, ModelRun.interval).distinct(),
        select(BacktestRun.exchange, BacktestRun.symbol, BacktestRun.interval).distinct(),
        select(JobRun.exchange, JobRun.symbol, JobRun.interval)
        .where(JobRun.exchange.is_not(None), JobRun.symbol.is_not(None), JobRun.interval.is_not(None)).distinct(),
    )
    rows = sorted((r.exchange, r.symbol, r.interval) for r in session.execute(query))
    return [Market.from_columns(*row) for row in rows]
