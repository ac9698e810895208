"""Queries on `candle_gaps` and the shape of a market's stored series. Functions take the session
as a keyword and never commit."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from db.models import Candle, CandleGap


def _market(model, exchange: str, symbol: str, interval: str):
    return (model.exchange == exchange, model.symbol == symbol, model.interval == interval)


def stored_span(*, session: Session, exchange: str, symbol: str, interval: str) -> tuple[int, datetime | None, datetime | None]:
    """(number of stored candles, oldest open_time, newest open_time): one pass over the key's index."""
    count, oldest, newest = session.execute(
        select(func.count(), func.min(Candle.open_time), func.max(Candle.open_time))
        .where(*_market(Candle, exchange, symbol, interval))).one()
    return count or 0, oldest, newest


def stored_open_times(*, session: Session, exchange: str, symbol: str, interval: str) -> list[datetime]:
    return list(session.scalars(select(Candle.open_time).where(*_market(Candle, exchange, symbol, interval))
                                .order_by(Candle.open_time)))


def recorded_gaps(*, session: Session, exchange: str, symbol: str, interval: str) -> list[CandleGap]:
    return list(session.scalars(select(CandleGap).where(*_market(CandleGap, exchange, symbol, interval))
                                .order_by(CandleGap.first_missing)))


def forget_gaps(*, session: Session, exchange: str, symbol: str, interval: str, first_missing: Iterable[datetime]) -> None:
    firsts = list(first_missing)
    if firsts:
        session.execute(delete(CandleGap).where(*_market(CandleGap, exchange, symbol, interval),
                                                CandleGap.first_missing.in_(firsts)))


def record_gap(*, session: Session, exchange: str, symbol: str, interval: str, first_missing: datetime, last_missing: datetime,
               hours: int, checks: int, first_checked_at: datetime, last_checked_at: datetime,
               confirmed_at: datetime | None) -> None:
    session.merge(CandleGap(exchange=exchange, symbol=symbol, interval=interval, first_missing=first_missing,
                            last_missing=last_missing, hours=hours, checks=checks, first_checked_at=first_checked_at,
                            last_checked_at=last_checked_at, confirmed_at=confirmed_at))
