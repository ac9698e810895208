"""Lengths are told in the market's own unit: a count of candles is steps of its interval."""
from __future__ import annotations

import pytest

from core.intervals import describe_steps


@pytest.mark.parametrize("n, interval, words", [
    (7, "1d", "7 days"), (1, "1d", "1 day"), (24, "1h", "24 hours"), (1, "1h", "1 hour"),
    (16, "15m", "16 steps of 15m"), (1, "4h", "1 step of 4h"), (2.5, "1h", "2.5 hours"), (3.0, "1d", "3 days"),
])
def test_steps_are_told_in_the_interval_s_unit(n, interval, words):
    assert describe_steps(n, interval) == words
