"""The import job: a CSV of one market's candles (`ts,open,high,low,close,volume`) into `candles`.

Every row is validated; the first bad one stops the import with its line number and, because the
whole file is written in one transaction, nothing from that file is kept. A candle must be a whole,
closed candle on the market's grid (its interval, its exchange's day boundary): a timestamp off
that grid, with seconds or a fraction of a second, would be a second candle in its interval, and one
from the future would make ingest believe the store is ahead of the exchange.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.candle import candle_problems
from core.grid import EPOCH, CandleGrid
from core.market import Market
from core.names import Job
from db.candles import count_candles, write_candles
from db.upsert import BATCH_ROWS
from exchanges.registry import grid_of
from jobs.progress import progress
from jobs.recording import recorded

if TYPE_CHECKING:
    from jobs.bootstrap import Services

COLUMNS = ["ts", "open", "high", "low", "close", "volume"]
PRICES = ["open", "high", "low", "close"]
# No exchange traded a coin before Bitcoin's first block (2009-01-03): an older candle is a
# misread timestamp (epoch seconds read as milliseconds give 1970) or a made-up row.
OLDEST_CANDLE = pd.Timestamp("2009-01-01T00:00:00Z")
# An epoch number is read by its magnitude: below 1e11 as seconds (up to the year 5138), from 1e11
# to 1e14 as milliseconds (1973..5138); larger ones (micro- or nanoseconds) are refused. Seconds
# read as milliseconds used to store 2025 as 1970-01-21, silently.
SECONDS_BELOW = 10**11
MILLISECONDS_BELOW = 10**14


class CsvError(ValueError):
    """The CSV cannot be imported; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class ImportResult:
    rows_read: int
    new_rows: int


def import_csv(services: Services, path: Path, market: Market, *, now: datetime | None = None) -> ImportResult:
    sessions = services.sessions
    path = Path(path)
    # A candle is usable once its interval has ended: open_time + step <= now.
    step = pd.Timedelta(market.period.step)
    newest_allowed = pd.Timestamp(now or datetime.now(timezone.utc)) - step
    with recorded(sessions, Job.IMPORT, market) as record:
        if path.is_dir():
            raise CsvError(f"{path}: is a directory, not a CSV file")
        if not path.is_file():
            raise CsvError(f"{path}: no such file")
        total_lines = _count_lines(path)
        read = 0
        with sessions() as s, s.begin(), progress(f"import {path.name}", total_lines) as bar:
            before = count_candles(session=s, market=market)
            ingested_at = datetime.now(timezone.utc)
            seen: set[int] = set()  # every ts of the file so far, as epoch ns: duplicates across batches
            grid = _Grid(market.interval, grid_of(market))
            for chunk_start, chunk in _chunks(path):
                frame = _validated_frame(path, chunk, chunk_start, seen, newest_allowed, grid)
                write_candles(frame, session=s, market=market, source="csv",
                              ingested_at=ingested_at)
                read += len(chunk)
                bar.advance(len(chunk))
            if read == 0:
                raise CsvError(f"{path}: no data rows, only a header: nothing to import")
            after = count_candles(session=s, market=market)
        record.rows = after - before
        record.message = f"{path.name}: {read} rows read, {after - before} new candles"
        return ImportResult(read, after - before)


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return max(sum(1 for _ in f) - 1, 0)


def _chunks(path: Path):
    """(first data line number, frame) per batch; line numbers count the header as line 1."""
    try:
        # header=None: the header is checked as the first row. With a header row, pandas takes rows
        # of one field more than the header for an index column and shifts every value one column
        # left, silently; without, the first line fixes the number of fields and a longer row is
        # a ParserError naming its line.
        reader = pd.read_csv(path, dtype=str, chunksize=BATCH_ROWS, keep_default_na=False, header=None)
        line = 2
        for i, chunk in enumerate(reader):
            if i == 0:
                header = [str(x) for x in chunk.iloc[0].tolist()] if len(chunk) else []
                if header != COLUMNS:
                    raise CsvError(f"{path}: header is {','.join(header)}; expected {','.join(COLUMNS)}")
                chunk = chunk.iloc[1:]
            chunk = chunk.set_axis(COLUMNS, axis=1)
            yield line, chunk
            line += len(chunk)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise CsvError(f"{path}: not a readable CSV ({str(e).splitlines()[0]})") from None


@dataclass
class _Grid:
    """The market's grid of open times (core/grid.py): whole hours for 1h, quarter-hours for
    15m, and 4h and day candles from the hour the exchange's day begins (15:00 UTC for Bithumb)."""

    interval: str
    grid: CandleGrid

    def off(self, ts: pd.Series) -> np.ndarray:
        since_anchor = ts - pd.Timestamp(EPOCH) - pd.Timedelta(self.grid.anchor)
        return ((since_anchor % pd.Timedelta(self.grid.step)) != pd.Timedelta(0)).to_numpy()

    def problem(self) -> str:
        if self.interval == "1h":
            return "ts is not on the hour (minutes, seconds and fractions must be 0)"
        return f"ts is not on the {self.interval} grid ({self.grid.describe()})"


def _validated_frame(path: Path, chunk: pd.DataFrame, first_line: int, seen: set[int],
                     newest_allowed: pd.Timestamp, grid: _Grid) -> pd.DataFrame:
    lines = np.arange(first_line, first_line + len(chunk))
    ts, unit = _parse_ts(chunk["ts"])
    _fail_at(path, lines, (unit == "too large").to_numpy(),
             "ts is a number too large for epoch seconds or milliseconds (micro- or nanoseconds are not read)",
             chunk)
    _fail_at(path, lines, ts.isna().to_numpy(), "ts is not ISO-8601 UTC, epoch seconds or epoch milliseconds", chunk)
    for read_as in ("", "seconds", "milliseconds"):
        how = f" (a number, read as epoch {read_as})" if read_as else ""
        _fail_at(path, lines, ((ts < OLDEST_CANDLE) & (unit == read_as)).to_numpy(),
                 f"the candle opens before 2009{how}: no exchange traded then", chunk)
    values = chunk[PRICES + ["volume"]].apply(pd.to_numeric, errors="coerce")
    _fail_at(path, lines, values.isna().any(axis=1).to_numpy(), "a price or volume is not a number", chunk)
    v = values.to_numpy(dtype=float)
    checks = [
        *candle_problems(*v.T),  # the clients' validator, on every row at once
        (grid.off(ts), grid.problem()),
        (ts > newest_allowed, f"the candle's {'hour' if grid.interval == '1h' else grid.interval} has not closed "
                              f"yet (it must open at or before {newest_allowed:%Y-%m-%dT%H:%M:%SZ})"),
    ]
    for mask, problem in checks:
        _fail_at(path, lines, np.asarray(mask), problem, chunk)
    keys = ts.astype("int64").to_numpy()
    repeated = pd.Series(keys).duplicated().to_numpy() | np.fromiter((k in seen for k in keys), bool, len(keys))
    _fail_at(path, lines, repeated, "ts appears twice in the file", chunk)
    seen.update(keys.tolist())
    return pd.DataFrame(v, columns=PRICES + ["volume"], index=pd.DatetimeIndex(ts, name="open_time"))


def _parse_ts(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(open times, how each was read: "" for ISO-8601 text, "seconds" or "milliseconds" for an
    epoch number by its magnitude, "too large" for a number that is neither)."""
    text = raw.str.strip()
    is_number = text.str.fullmatch(r"\d{1,19}")
    number = pd.to_numeric(text.where(is_number), errors="coerce")
    seconds = is_number & (number < SECONDS_BELOW)
    millis = is_number & (number >= SECONDS_BELOW) & (number < MILLISECONDS_BELOW)
    unit = pd.Series("", index=raw.index).mask(seconds, "seconds").mask(millis, "milliseconds") \
        .mask(is_number & ~seconds & ~millis, "too large")
    parsed = pd.to_datetime(text.where(~is_number), utc=True, errors="coerce", format="ISO8601")
    as_seconds = pd.to_datetime(number.where(seconds) * 1000, unit="ms", utc=True)
    as_millis = pd.to_datetime(number.where(millis), unit="ms", utc=True)
    return parsed.where(~seconds, as_seconds).where(~millis, as_millis).where(unit != "too large"), unit


def _fail_at(path: Path, lines: np.ndarray, bad: np.ndarray, problem: str, chunk: pd.DataFrame) -> None:
    if bad.any():
        i = int(np.argmax(bad))
        row = ",".join(str(x) for x in chunk.iloc[i].tolist())
        raise CsvError(f"{path}: line {lines[i]}: {problem}: {row}")
