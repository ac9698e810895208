"""Lengths in the market's own unit, for every message, help text, report and page: a count of
candles is a count of steps of the market's interval, never "hours" unless the interval is 1h."""
from __future__ import annotations

# Intervals one candle of which is one whole unit of time, named by that unit.
_UNITS = {"1m": "minute", "1h": "hour", "1d": "day"}


def describe_steps(n: float, interval: str) -> str:
    """`n` steps of `interval` in words: `7 days` (1d), `24 hours` (1h), `1 hour`, `16 steps of 15m`."""
    count = f"{n:g}" if isinstance(n, float) else str(n)
    unit = _UNITS.get(interval)
    if unit is None:
        return f"{count} step{'' if n == 1 else 's'} of {interval}"
    return f"{count} {unit}{'' if n == 1 else 's'}"
