"""Times given on the command line: ISO-8601, UTC unless an offset says otherwise."""
from __future__ import annotations

from datetime import datetime

FORMAT_HELP = "ISO-8601, UTC unless it has an offset, e.g. 2023-12-01T00:00Z"


def parse_time(text: str, option: str) -> datetime:
    import pandas as pd
    try:
        ts = pd.Timestamp(text.strip())
    except ValueError:
        ts = None
    if ts is None or pd.isna(ts):
        raise ValueError(f"{option} {text!r} is not a time: write {FORMAT_HELP}") from None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def parse_span(text: str, option: str) -> tuple[datetime, datetime]:
    """`TS` (one instant) or `FROM..TO` (both included)."""
    first, sep, last = text.partition("..")
    start = parse_time(first, option)
    end = parse_time(last, option) if sep else start
    if end < start:
        raise ValueError(f"{option} {text!r}: the range ends before it starts")
    return start, end


def check_zone(tz: str) -> str:
    """`tz` if it names a time zone (IANA: UTC, Asia/Seoul), else one clear error."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--tz {tz!r} is not a time zone (e.g. UTC, Asia/Seoul, Europe/Berlin)") from None
    return tz
