"""Input frames: one normal form for candles, and the grid of steps the model works on.

Gaps: real series miss candles (exchange outages). ``step_grid`` reindexes to every step of the
interval and leaves the missing ones as NaN; training drops every sample whose lookback or targets
touch a missing step; forecasting forward-fills a short gap in the lookback (at most
``ModelConfig.max_gap_fraction`` of it) and raises NotEnoughHistory otherwise.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.intervals import DEFAULT_INTERVAL, Interval, get_interval

from .errors import NotEnoughHistory


COLUMNS = ("open", "high", "low", "close", "volume")


def _times(df: pd.DataFrame) -> pd.DatetimeIndex:
    if "open_time" in df.columns:
        raw = df["open_time"]
    elif "ts" in df.columns:
        raw = df["ts"]
    elif isinstance(df.index, pd.DatetimeIndex):
        raw = df.index
    else:
        raise ValueError("candles need an 'open_time' (or 'ts') column or a DatetimeIndex")
    if pd.api.types.is_numeric_dtype(getattr(raw, "dtype", None)):
        idx = pd.DatetimeIndex(pd.to_datetime(np.asarray(raw), unit="ms", utc=True))
    else:
        idx = pd.DatetimeIndex(pd.to_datetime(raw, utc=True))
    return idx


def candles_frame(df: pd.DataFrame, interval: str | Interval = DEFAULT_INTERVAL) -> pd.DataFrame:
    """Normalise candles: DatetimeIndex ``open_time`` (aware UTC, each a whole number of steps of
    ``interval`` after the first, on a whole minute), float columns open, high, low, close,
    volume, sorted ascending, unique, positive prices.

    Accepts ``open_time`` or ``ts`` (ISO text, datetimes or epoch ms) as a column, or a
    DatetimeIndex (naive is read as UTC). Raises ValueError naming the first bad row.
    """
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"candles lack column(s): {', '.join(missing)}")
    idx = _times(df)
    out = pd.DataFrame({c: pd.to_numeric(np.asarray(df[c]), errors="coerce") for c in COLUMNS},
                       index=idx).astype("float64")
    out.index.name = "open_time"
    out = out.sort_index()
    if out.index.has_duplicates:
        raise ValueError(f"duplicate open_time {out.index[out.index.duplicated()][0]}")
    step = pd.Timedelta(get_interval(interval).step)
    if len(out):
        off_grid = (out.index != out.index.floor("min")) | ((out.index - out.index[0]) % step != pd.Timedelta(0))
        if off_grid.any():
            raise ValueError(f"open_time {out.index[off_grid][0]} is not on the {get_interval(interval).name} "
                             f"grid of the candles before it")
    bad = out[out.isna().any(axis=1) | (out[["open", "high", "low", "close"]] <= 0).any(axis=1)
              | (out["volume"] < 0)]
    if len(bad):
        raise ValueError(f"bad candle at {bad.index[0]}: {bad.iloc[0].to_dict()}")
    return out


def step_grid(frame: pd.DataFrame, interval: str | Interval = DEFAULT_INTERVAL,
              end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Reindex a candles frame onto every step of ``interval`` from its first row to ``end``
    (default: last row); missing steps are NaN. Rows after ``end`` are dropped, never looked at."""
    if end is not None:
        frame = frame.loc[:end]
    if len(frame) == 0:
        raise NotEnoughHistory("no candles")
    full = pd.date_range(frame.index[0], frame.index[-1], freq=get_interval(interval).step, name="open_time")
    return frame.reindex(full)


def to_utc(ts) -> pd.Timestamp:
    """An aware UTC Timestamp from a datetime/Timestamp/str (naive is read as UTC)."""
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
