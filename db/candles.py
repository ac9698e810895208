"""Queries on `candles`. Functions take the session as a keyword and never commit."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.intervals import describe_steps_short, steps_word, time_format
from core.market import Market
from db.market_key import market_filter
from db.models import Candle
from db.upsert import BATCH_ROWS

_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


def newest_open_time(*, session: Session, market: Market) -> datetime | None:
    return session.scalar(select(func.max(Candle.open_time)).where(*market_filter(Candle, market)))


def count_candles(*, session: Session, market: Market) -> int:
    return session.scalar(select(func.count()).select_from(Candle).where(*market_filter(Candle, market))) or 0


def candles_to_frame(candles: Iterable) -> pd.DataFrame:
    """A frame for `write_candles` from objects with open_time/open/high/low/close/volume."""
    candles = list(candles)
    frame = pd.DataFrame({c: [getattr(x, c) for x in candles] for c in _VALUE_COLUMNS},
                         index=pd.DatetimeIndex([x.open_time for x in candles], name="open_time"))
    frame.index = pd.to_datetime(frame.index, utc=True)
    return frame


def write_candles(frame: pd.DataFrame, *, session: Session, market: Market, source: str,
                  ingested_at: datetime | None = None) -> None:
    """Upsert a frame of validated candles (aware UTC `open_time` index, float value columns).

    A row whose values equal the stored ones is left alone, so a re-run changes nothing, not even
    `ingested_at`. This is the store's hot path (a 55,740-row CSV import): it sends plain tuples
    through the driver's executemany rather than building a dict and binding types per row.
    """
    if frame.empty:
        return
    ingested_at = ingested_at or datetime.now(timezone.utc)
    times = pd.DatetimeIndex(frame.index).tz_convert("UTC")
    sqlite_ = session.get_bind().dialect.name == "sqlite"
    if sqlite_:
        # The exact text SQLAlchemy's SQLite DateTime writes, so rows written either way compare equal.
        open_times = times.strftime(_SQLITE_TS).tolist()
        stamp = ingested_at.astimezone(timezone.utc).strftime(_SQLITE_TS)
    else:
        open_times, stamp = times.to_pydatetime().tolist(), ingested_at
    values = frame[list(_VALUE_COLUMNS)].to_numpy(dtype=float).tolist()
    rows = [(market.exchange, market.symbol, market.interval, t, *v, source, stamp) for t, v in zip(open_times, values)]
    sql = _UPSERT_SQL.replace("?", "?" if sqlite_ else "%s")
    connection = session.connection()
    for start in range(0, len(rows), BATCH_ROWS):
        connection.exec_driver_sql(sql, rows[start:start + BATCH_ROWS])


_SQLITE_TS = "%Y-%m-%d %H:%M:%S.%f"
# Plain SQL both SQLite (3.24+) and Postgres run; values are NOT NULL, so `<>` tells a change.
_UPSERT_SQL = (
    "INSERT INTO candles (exchange, symbol, interval, open_time, open, high, low, close, volume, source, "
    "ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (exchange, symbol, interval, open_time) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_VALUE_COLUMNS, "source", "ingested_at"))
    + " WHERE " + " OR ".join(f"candles.{c} <> excluded.{c}" for c in _VALUE_COLUMNS)
)


def load_frame(*, session: Session, market: Market,
               since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    """Closed candles as a frame indexed by aware UTC `open_time`, with since < open_time <= until."""
    stmt = select(Candle.open_time, *[getattr(Candle, c) for c in _VALUE_COLUMNS]).where(
        *market_filter(Candle, market))
    if since is not None:
        stmt = stmt.where(Candle.open_time > since)
    if until is not None:
        stmt = stmt.where(Candle.open_time <= until)
    rows = session.execute(stmt.order_by(Candle.open_time)).all()
    frame = pd.DataFrame(rows, columns=["open_time", *_VALUE_COLUMNS])
    frame["open_time"] = pd.to_datetime(frame["open_time"], utc=True)
    return frame.set_index("open_time")


def open_times_between(*, session: Session, market: Market, since: datetime, until: datetime) -> list[datetime]:
    """The stored candles' open_time in [since, until], ascending."""
    return list(session.scalars(select(Candle.open_time)
                                .where(*market_filter(Candle, market), Candle.open_time >= since,
                                       Candle.open_time <= until)
                                .order_by(Candle.open_time)))


def find_gaps(open_times: Iterable[datetime], step: timedelta) -> list[tuple[datetime, datetime, int]]:
    """Runs of missing candles: (last present, first present after, candles missing)."""
    gaps = []
    previous = None
    for t in open_times:
        if previous is not None and t - previous > step:
            gaps.append((previous, t, int((t - previous) / step) - 1))
        previous = t
    return gaps


def describe_gaps(gaps: list[tuple[datetime, datetime, int]], limit: int = 3, *, interval: str = "1h") -> str:
    """`12 missing hours in 3 gaps (...)`; candles of other intervals are counted as candles, and
    the times of an interval under an hour show their minutes."""
    if not gaps:
        return "no gaps"
    missing = sum(g[2] for g in gaps)
    stamp = time_format(interval)
    shown = ", ".join(f"{describe_steps_short(g[2], interval)} after {g[0].strftime(stamp)}Z"
                      for g in sorted(gaps, key=lambda g: -g[2])[:limit])
    return f"{missing} missing {steps_word(interval)} in {len(gaps)} gaps (largest: {shown})"
