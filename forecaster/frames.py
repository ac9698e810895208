"""Input frames: one normal form for candles, and the hourly grid the model works on.

Gaps: real series miss hours (exchange outages). ``hourly_grid`` reindexes to the full hourly
grid and leaves the missing hours as NaN; training drops every sample whose lookback or targets
touch a missing hour; forecasting forward-fills a short gap in the lookback (at most
``ModelConfig.max_gap_fraction`` of it) and raises NotEnoughHistory otherwise.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import NotEnoughHistory

COLUMNS = ("open", "high", "low", "close", "volume")
HOUR = pd.Timedelta(hours=1)


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


def candles_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Normalise candles: DatetimeIndex ``open_time`` (aware UTC, on the hour), float columns
    open, high, low, close, volume, sorted ascending, unique, positive prices.

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
    if len(out) and (out.index != out.index.floor("h")).any():
        bad = out.index[out.index != out.index.floor("h")][0]
        raise ValueError(f"open_time {bad} is not on the hour")
    bad = out[out.isna().any(axis=1) | (out[["open", "high", "low", "close"]] <= 0).any(axis=1)
              | (out["volume"] < 0)]
    if len(bad):
        raise ValueError(f"bad candle at {bad.index[0]}: {bad.iloc[0].to_dict()}")
    return out


def hourly_grid(frame: pd.DataFrame, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Reindex a candles frame onto every hour from its first row to ``end`` (default: last
    row); missing hours are NaN. Rows after ``end`` are dropped, never looked at."""
    if end is not None:
        frame = frame.loc[:end]
    if len(frame) == 0:
        raise NotEnoughHistory("no candles")
    full = pd.date_range(frame.index[0], frame.index[-1], freq="h", name="open_time")
    return frame.reindex(full)


def to_utc(ts) -> pd.Timestamp:
    """An aware UTC Timestamp from a datetime/Timestamp/str (naive is read as UTC)."""
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
