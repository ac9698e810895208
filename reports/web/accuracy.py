"""Live coverage and interval score over the 7 days up to a market's newest candle, for the
overview, kept per target candle in memory so that a page view reads only the newest targets.

Reading a week of forecasts of 40 markets (161,000 rows with their truth) took most of a second on
SQLite; the figures of a target whose candle has settled do not change, so each view re-reads only
the targets from SETTLE_STEPS before the newest candle on (the newest candle is re-read by ingest
and may be amended), and the rest comes from memory. A past forecast written again later (`predict
--at --replace` of old origins) shows once the target drops out of the cache: after REREAD_AFTER.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.market import Market
from db.overview import TargetSums, live_sums_by_target

WINDOW = timedelta(days=7)
SETTLE_STEPS = 2
REREAD_AFTER = 3600.0  # seconds: read the whole week again this often


@dataclass(frozen=True)
class Accuracy:
    n: int
    coverage: float | None
    interval_score: float | None  # quote currency, lower is better


class LiveAccuracy:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: dict[Market, dict[datetime, TargetSums]] = {}
        self._read_at: dict[Market, float] = {}

    def week(self, session, market: Market, newest: datetime) -> Accuracy:
        since = newest - WINDOW
        with self._lock:
            known = dict(self._targets.get(market, {}))
            fresh = time.monotonic() - self._read_at.get(market, float("-inf")) < REREAD_AFTER
        settled = newest - SETTLE_STEPS * market.period.step
        read_from = max(since, min(max(known, default=since), settled)) if fresh else since
        rows = live_sums_by_target(session, market, read_from, newest)
        kept = {t: s for t, s in known.items() if since < t <= read_from}
        kept.update({s.target_time: s for s in rows})
        with self._lock:
            self._targets[market] = kept
            if not fresh:
                self._read_at[market] = time.monotonic()
        n = sum(s.n for s in kept.values())
        if n == 0:
            return Accuracy(0, None, None)
        return Accuracy(n, sum(s.hits for s in kept.values()) / n, sum(s.score_sum for s in kept.values()) / n)
