"""Queries on `candles`. Functions take the session as a keyword and never commit."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Candle
from db.upsert import upsert

INTERVAL = "1h"
_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


def _market_filter(exchange: str, symbol: str):
    return (Candle.exchange == exchange, Candle.symbol == symbol, Candle.interval == INTERVAL)


def newest_open_time(*, session: Session, exchange: str, symbol: str) -> datetime | None:
    return session.scalar(select(func.max(Candle.open_time)).where(*_market_filter(exchange, symbol)))


def count_candles(*, session: Session, exchange: str, symbol: str) -> int:
    return session.scalar(select(func.count()).select_from(Candle).where(*_market_filter(exchange, symbol))) or 0


def candle_rows(candles: Iterable, *, exchange: str, symbol: str, source: str,
                ingested_at: datetime | None = None) -> Iterator[dict]:
    """Rows for `upsert_candles` from objects with open_time/open/high/low/close/volume."""
    ingested_at = ingested_at or datetime.now(timezone.utc)
    for c in candles:
        yield {
            "exchange": exchange, "symbol": symbol, "interval": INTERVAL, "open_time": c.open_time,
            "open": c.open, "high": c.high, "low": c.low, "close": c.close, "volume": c.volume,
            "source": source, "ingested_at": ingested_at,
        }


def upsert_candles(rows: Iterable[dict], *, session: Session) -> None:
    """Write candle rows; a re-run of the same rows changes nothing (not even `ingested_at`)."""
    upsert(
        session, Candle.__table__, rows,
        key=("exchange", "symbol", "interval", "open_time"),
        update=(*_VALUE_COLUMNS, "source", "ingested_at"),
        only_if_changed=_VALUE_COLUMNS,
    )


def load_frame(*, session: Session, exchange: str, symbol: str,
               since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    """Closed candles as a frame indexed by aware UTC `open_time`, with since < open_time <= until."""
    stmt = select(Candle.open_time, *[getattr(Candle, c) for c in _VALUE_COLUMNS]).where(
        *_market_filter(exchange, symbol))
    if since is not None:
        stmt = stmt.where(Candle.open_time > since)
    if until is not None:
        stmt = stmt.where(Candle.open_time <= until)
    rows = session.execute(stmt.order_by(Candle.open_time)).all()
    frame = pd.DataFrame(rows, columns=["open_time", *_VALUE_COLUMNS])
    frame["open_time"] = pd.to_datetime(frame["open_time"], utc=True)
    return frame.set_index("open_time")


def find_gaps(open_times: Iterable[datetime]) -> list[tuple[datetime, datetime, int]]:
    """Runs of missing hours: (last present, first present after, hours missing)."""
    gaps = []
    previous = None
    for t in open_times:
        if previous is not None and t - previous > timedelta(hours=1):
            gaps.append((previous, t, int((t - previous) / timedelta(hours=1)) - 1))
        previous = t
    return gaps


def gaps_between(*, session: Session, exchange: str, symbol: str,
                 since: datetime | None = None) -> list[tuple[datetime, datetime, int]]:
    stmt = select(Candle.open_time).where(*_market_filter(exchange, symbol))
    if since is not None:
        stmt = stmt.where(Candle.open_time >= since)
    return find_gaps(session.scalars(stmt.order_by(Candle.open_time)))


def describe_gaps(gaps: list[tuple[datetime, datetime, int]], limit: int = 3) -> str:
    if not gaps:
        return "no gaps"
    missing = sum(g[2] for g in gaps)
    shown = ", ".join(f"{g[2]}h after {g[0]:%Y-%m-%dT%H}Z" for g in sorted(gaps, key=lambda g: -g[2])[:limit])
    return f"{missing} missing hours in {len(gaps)} gaps (largest: {shown})"
