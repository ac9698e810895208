"""What the daemon knows about each market, read from the database after each job (db/market_state.py),
and the health rule that `/healthz` (daemon/health_server.py) answers with.

Health rule: 200 while the scheduler runs and, for every market served, the newest stored candle
is at most FORECASTER_HEALTHZ_MAX_LAG_HOURS behind the last closed hour; 503 otherwise (a store
that is not caught up yet, an exchange down for hours, a database that cannot be read, a daemon
stopping). The rule looks at the data, not at the last run: a failed ingest that is retried in
time is not an outage, and a daemon that skips an ingest another daemon just did stays healthy.
Forecasts that stall and trainings that keep failing make a market unhealthy too
(daemon/market_health.py); the reasons are listed under the market and at the top.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from daemon.clock import SYSTEM_CLOCK, SystemClock
from daemon.market_health import TRAIN_FAILURES_UNHEALTHY, market_problems
from db.market_state import read_market_facts
from core.market import Market

MODEL_FIGURES = ("val_rmae", "val_coverage", "val_mae", "val_naive_mae")  # of the promoted model, for /metrics


@dataclass
class MarketState:
    newest_candle: datetime | None = None
    newest_origin: datetime | None = None
    model: dict | None = None  # the promoted model run: id, figures, finished_at
    read_at: datetime | None = None
    train_failures: int = 0  # failed trainings in a row (up to TRAIN_FAILURES_UNHEALTHY)
    train_error: str | None = None  # the newest one's message
    coverage_7d: tuple[float, int] | None = None  # live band coverage over the last week, forecasts scored


@dataclass
class DaemonState:
    markets: dict[Market, MarketState]
    max_lag_hours: float
    running: bool = False
    clock: SystemClock = field(default=SYSTEM_CLOCK, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_markets(cls, markets: list[Market], max_lag_hours: float, clock: SystemClock = SYSTEM_CLOCK) -> DaemonState:
        return cls({m: MarketState() for m in markets}, max_lag_hours, clock=clock)

    def refresh(self, sessions, market: Market) -> None:
        """Read the market's newest candle, forecast origin and promoted model from the database."""
        with sessions() as s:
            facts = read_market_facts(session=s, market=market, train_failures_limit=TRAIN_FAILURES_UNHEALTHY)
        run = facts.promoted
        model = None if run is None else {"id": run.id, "finished_at": run.finished_at,
                                          **{k: getattr(run, k) for k in MODEL_FIGURES}}
        with self._lock:
            self.markets[market] = MarketState(facts.newest_candle, facts.newest_origin, model, self.clock.now(),
                                               facts.train_failures, facts.train_error, facts.coverage_7d)

    def snapshot(self) -> dict[Market, MarketState]:
        with self._lock:
            return dict(self.markets)

    def health(self, now: datetime | None = None) -> tuple[bool, dict]:
        now = now or self.clock.now()
        markets, healthy, reasons = {}, self.running, []
        for market, st in self.snapshot().items():
            # In the market's own steps: 3 means three 1h, 15m or 1d candles behind.
            lag = market.period.closed_after(st.newest_candle, now) if st.newest_candle else None
            problems = market_problems(market, st, self.max_lag_hours)
            if lag is None or lag > self.max_lag_hours:
                problems.insert(0, "no candles stored yet" if lag is None else
                                f"the newest candle is {lag:.0f} candles behind the last closed one")
            ok = not problems
            healthy = healthy and ok
            reasons += [f"{market}: {p}" for p in problems]
            markets[str(market)] = {
                "ok": ok, "interval": market.interval, "newest_candle": _iso(st.newest_candle),
                "lag_steps": lag, "lag_hours": lag * market.period.minutes / 60 if lag is not None else None,
                "newest_origin": _iso(st.newest_origin), "model_run_id": st.model["id"] if st.model else None,
                "problems": problems,
            }
        if not self.running:
            reasons.insert(0, "the scheduler is not running")
        return healthy, {"status": "ok" if healthy else "unhealthy", "reasons": reasons,
                         "scheduler": "running" if self.running else "stopped",
                         "max_lag_hours": self.max_lag_hours, "markets": markets}


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts else None
