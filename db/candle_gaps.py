"""Queries on `candle_gaps` and the shape of a market's stored series. Functions take the session
as a keyword and never commit."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.market import Market
from db.market_key import market_columns, market_filter
from db.models import Candle, CandleGap


def stored_span(*, session: Session, market: Market) -> tuple[int, datetime | None, datetime | None]:
    """(number of stored candles, oldest open_time, newest open_time): one pass over the key's index."""
    count, oldest, newest = session.execute(
        select(func.count(), func.min(Candle.open_time), func.max(Candle.open_time))
        .where(*market_filter(Candle, market))).one()
    return count or 0, oldest, newest


def stored_open_times(*, session: Session, market: Market) -> list[datetime]:
    return list(session.scalars(select(Candle.open_time).where(*market_filter(Candle, market))
                                .order_by(Candle.open_time)))


def recorded_gaps(*, session: Session, market: Market) -> list[CandleGap]:
    return list(session.scalars(select(CandleGap).where(*market_filter(CandleGap, market))
                                .order_by(CandleGap.first_missing)))


def forget_gaps(*, session: Session, market: Market, first_missing: Iterable[datetime]) -> None:
    firsts = list(first_missing)
    if firsts:
        session.execute(delete(CandleGap).where(*market_filter(CandleGap, market),
                                                CandleGap.first_missing.in_(firsts)))


def record_gap(*, session: Session, market: Market, first_missing: datetime, last_missing: datetime,
               hours: int, checks: int, first_checked_at: datetime, last_checked_at: datetime,
               confirmed_at: datetime | None) -> None:
    session.merge(CandleGap(**market_columns(market), first_missing=first_missing,
                            last_missing=last_missing, hours=hours, checks=checks, first_checked_at=first_checked_at,
                            last_checked_at=last_checked_at, confirmed_at=confirmed_at))
