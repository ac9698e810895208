"""Candles for tests: the real hourly series of tests/data, and, FOR TESTS ONLY, the same hours made
into the other intervals, in each exchange's day and 4h boundaries.

The program never resamples: each interval comes from the exchange's own candles of that interval.
tests/data holds only hourly series, so to serve 4h and day candles the test exchange needs them
made from hours here (`resample_candles`), the one place resampling is allowed (issue 13). No real
15-minute data exists in tests/data: `quarter_hours` splits each real hour into four synthetic
quarters whose open, high, low, close and volume add up exactly to that hour's (a path open ->
first extreme -> midway -> second extreme -> close, the low first in a rising hour and the high
first in a falling one, and a quarter of the volume each). They are shaped by the real hour, but the
moves inside the hour are invented: fit for paging, parsing and plumbing tests, not for judging a
15-minute model. `split_hours(hourly, 12)` makes 5-minute candles the same way (the path walked in
twelve legs).
"""
from __future__ import annotations

import csv
import gzip
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import groupby
from pathlib import Path

from core.candle import Candle
from core.grid import HOUR, CandleGrid
from core.intervals import get_interval
from core.market import Market
from exchanges.base import make_candle, parse_market
from exchanges.registry import EXCHANGES

QUARTER = timedelta(minutes=15)


def load_csv_slice(path: str | Path, start: str | datetime | None = None, hours: int | None = None) -> list[Candle]:
    """Candles of a tests/data CSV (.csv or .csv.gz) with start <= open_time < start + hours (the
    source's gaps kept)."""
    lo = _utc(start) if start is not None else None
    hi = lo + timedelta(hours=hours) if lo is not None and hours is not None else None
    # The data CSVs write ts as `YYYY-MM-DDTHH:MM:SSZ`, which sorts as text: filter before parsing.
    lo_key, hi_key = (f"{t:%Y-%m-%dT%H:%M:%SZ}" if t else None for t in (lo, hi))
    out = []
    for lineno, (ts, *values) in enumerate(_csv_rows(str(path)), start=2):
        if (lo_key and ts < lo_key) or (hi_key and ts >= hi_key):
            continue
        out.append(make_candle(datetime.fromisoformat(ts), *values, where=f"{path}:{lineno}"))
    return out


@lru_cache(maxsize=8)  # tests slice the same two files many times
def _csv_rows(path: str) -> tuple[tuple[str, ...], ...]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        reader = csv.reader(f)
        if next(reader) != ["ts", "open", "high", "low", "close", "volume"]:
            raise ValueError(f"{path}: header is not ts,open,high,low,close,volume")
        return tuple(tuple(row) for row in reader)


def retime(candles: list[Candle], last_open_time: datetime) -> list[Candle]:
    """The same candles shifted so that the last one opens at `last_open_time` (whole hours for
    hourly candles; give a time on the series' own grid for other intervals and it stays on it)."""
    shift = _utc(last_open_time) - candles[-1].open_time
    return [replace(c, open_time=c.open_time + shift) for c in candles]


def resample_candles(hourly: list[Candle], interval: str, day_start: timedelta = timedelta(0)) -> list[Candle]:
    """TEST DATA ONLY: candles of `interval` (4h or 1d) made of real hourly candles, on the grid that
    starts at `day_start` (UTC time of day; Bithumb's is 15:00). Each candle takes the first open,
    the highest high, the lowest low, the last close and the summed volume of the hours it holds;
    hours missing in the source (an exchange's maintenance) are missing in it too, and a candle
    whose hours all are missing does not exist, as on the exchange. Candles that the slice covers
    only in part, at either end, are left out."""
    grid = CandleGrid(get_interval(interval).step, day_start)
    if grid.step <= HOUR or grid.step % HOUR:
        raise ValueError(f"resample_candles builds intervals of whole hours above one; got {interval!r} "
                         "(for 15m, see quarter_hours)")
    if not hourly:
        return []
    covered_from, covered_to = hourly[0].open_time, hourly[-1].open_time + HOUR
    out = []
    for start, group in groupby(hourly, key=lambda c: grid.floor(c.open_time)):
        if start < covered_from or start + grid.step > covered_to:
            continue
        hours = list(group)
        out.append(Candle(start, hours[0].open, max(c.high for c in hours), min(c.low for c in hours),
                          hours[-1].close, sum(c.volume for c in hours)))
    return out


def split_hours(hourly: list[Candle], parts: int) -> list[Candle]:
    """TEST DATA ONLY: `parts` synthetic candles per real hour (4 for 15m, 12 for 5m; see the module
    docstring): the hour's path open -> first extreme -> second extreme -> close walked in `parts`
    equal legs, the volume shared equally; aggregated back, they give that hour exactly."""
    out = []
    length = HOUR / parts
    for c in hourly:
        first, second = (c.low, c.high) if c.close >= c.open else (c.high, c.low)
        corners = (c.open, first, second, c.close)
        # the path's points at each part's end: each leg of the three walked in parts/3 steps
        points = [c.open]
        for k in range(1, parts + 1):
            x = 3 * k / parts
            leg = min(int(x), 2)
            a, b = corners[leg], corners[leg + 1]
            points.append(a + (b - a) * (x - leg))
        points[-1] = c.close
        share = c.volume / parts
        # The last part takes what is left, so that the volumes sum to the hour's exactly.
        volumes = [share] * (parts - 1) + [c.volume - share * (parts - 1)]
        for k in range(parts):
            a, b = points[k], points[k + 1]
            out.append(Candle(c.open_time + k * length, a, max(a, b), min(a, b), b, volumes[k]))
    return out


def quarter_hours(hourly: list[Candle]) -> list[Candle]:
    """TEST DATA ONLY: four synthetic 15-minute candles per real hour (see the module docstring);
    aggregated back, they give that hour exactly."""
    out = []
    for c in hourly:
        first, second = (c.low, c.high) if c.close >= c.open else (c.high, c.low)
        path = (c.open, first, (first + second) / 2, second, c.close)
        quarter = c.volume / 4
        # The last quarter takes what is left, so that the four volumes sum to the hour's exactly.
        volumes = (quarter, quarter, quarter, c.volume - (quarter + quarter + quarter))
        for k in range(4):
            a, b = path[k], path[k + 1]
            out.append(Candle(c.open_time + k * QUARTER, a, max(a, b), min(a, b), b, volumes[k]))
    return out


def candles_for(market: str | Market, hourly: list[Candle]) -> list[Candle]:
    """TEST DATA ONLY: `hourly` as the candles of `market`'s interval, on its exchange's grid."""
    m = parse_market(market) if isinstance(market, str) else market
    if m.interval == "1h":
        return list(hourly)
    if m.interval == "15m":
        return quarter_hours(hourly)
    if m.interval == "5m":
        return split_hours(hourly, 12)
    return resample_candles(hourly, m.interval, EXCHANGES[m.exchange].day_start)


def _utc(value: str | datetime) -> datetime:
    ts = datetime.fromisoformat(value) if isinstance(value, str) else value
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)
