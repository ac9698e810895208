"""What the daemon knows about each market, and the HTTP endpoints that tell it: `/healthz` and
`/metrics` (Prometheus text format, from a registry private to the daemon, built at start).

Health rule: 200 while the scheduler runs and, for every market served, the newest stored candle
is at most FORECASTER_HEALTHZ_MAX_LAG_HOURS behind the last closed hour; 503 otherwise (a store
that is not caught up yet, an exchange down for hours, a database that cannot be read, a daemon
stopping). The rule looks at the data, not at the last run: a failed ingest that is retried in
time is not an outage, and a daemon that skips an ingest another daemon just did stays healthy.
Forecasts that stall and trainings that keep failing make a market unhealthy too
(jobs/runtime/market_health.py); the reasons are listed under the market and at the top.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from db.candles import newest_open_time
from db.job_runs import failures_in_a_row
from db.live_coverage import live_coverage_7d
from db.model_runs import promoted_run
from db.predictions import newest_origin
from exchanges.base import Market
from jobs.errors import JobError
from jobs.runtime.http_server import BoundedHTTPServer
from jobs.runtime.market_health import TRAIN_FAILURES_UNHEALTHY, market_health_gauges, market_problems

log = logging.getLogger(__name__)
_MODEL_FIGURES = ("val_rmae", "val_coverage", "val_mae", "val_naive_mae")
JOB_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_markets(cls, markets: list[Market], max_lag_hours: float) -> DaemonState:
        return cls({m: MarketState() for m in markets}, max_lag_hours)

    def refresh(self, sessions, market: Market) -> None:
        """Read the market's newest candle, forecast origin and promoted model from the database."""
        with sessions() as s:
            candle = newest_open_time(session=s, market=market)
            origin = newest_origin(session=s, market=market)
            run = promoted_run(session=s, market=market)
            failures, error = failures_in_a_row(session=s, job="train", market=market, limit=TRAIN_FAILURES_UNHEALTHY)
            coverage = live_coverage_7d(session=s, market=market)
        model = None if run is None else {"id": run.id, "finished_at": run.finished_at,
                                          **{k: getattr(run, k) for k in _MODEL_FIGURES}}
        with self._lock:
            self.markets[market] = MarketState(candle, origin, model, datetime.now(timezone.utc), failures, error,
                                               coverage)

    def snapshot(self) -> dict[Market, MarketState]:
        with self._lock:
            return dict(self.markets)

    def health(self, now: datetime | None = None) -> tuple[bool, dict]:
        now = now or datetime.now(timezone.utc)
        markets, healthy, reasons = {}, self.running, []
        for market, st in self.snapshot().items():
            # In the market's own steps: 3 means three 1h, 15m or 1d candles behind.
            lag = market.step.closed_after(st.newest_candle, now) if st.newest_candle else None
            problems = market_problems(market, st, self.max_lag_hours)
            if lag is None or lag > self.max_lag_hours:
                problems.insert(0, "no candles stored yet" if lag is None else
                                f"the newest candle is {lag:.0f} candles behind the last closed one")
            ok = not problems
            healthy = healthy and ok
            reasons += [f"{market}: {p}" for p in problems]
            markets[str(market)] = {
                "ok": ok, "interval": market.interval, "newest_candle": _iso(st.newest_candle),
                "lag_steps": lag, "lag_hours": lag * market.step.minutes / 60 if lag is not None else None,
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


class Metrics:
    """Counters the daemon updates as jobs run, plus gauges read from DaemonState at each scrape."""

    def __init__(self, state: DaemonState, pools: dict | None = None) -> None:
        """`pools`: name -> object with counts() -> (running, waiting) and peak_running."""
        self.registry = CollectorRegistry()
        # `job_name`, not `job`: Prometheus gives every scraped series its scrape job's `job` label and
        # renames a series' own `job` to `exported_job`, which merged ingest, train and predict.
        self.job_runs = Counter("forecaster_job_runs", "Job runs by outcome (ok, failed, skipped).",
                                ["job_name", "market", "status"], registry=self.registry)
        self.job_seconds = Histogram("forecaster_job_duration_seconds", "Wall time of job runs that ran.",
                                     ["job_name", "market"], buckets=JOB_BUCKETS, registry=self.registry)
        self.registry.register(_StateCollector(state))
        if pools:
            self.registry.register(_PoolCollector(pools))

    def job_done(self, job: str, market: Market, status: str, seconds: float | None) -> None:
        self.job_runs.labels(job, str(market), status).inc()
        if seconds is not None:
            self.job_seconds.labels(job, str(market)).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _PoolCollector:
    """How many jobs of each pool (ingest, train) run and wait now, and the most that ran at once."""

    def __init__(self, pools: dict) -> None:
        self.pools = pools

    def collect(self):
        running = GaugeMetricFamily("forecaster_pool_running", "Jobs of a worker pool running now.", labels=["pool"])
        waiting = GaugeMetricFamily("forecaster_pool_waiting", "Jobs queued for a worker pool.", labels=["pool"])
        peak = GaugeMetricFamily("forecaster_pool_running_peak", "Most jobs of a worker pool that ran at once "
                                 "since the daemon started.", labels=["pool"])
        for name, pool in self.pools.items():
            now, queued = pool.counts()
            running.add_metric([name], now)
            waiting.add_metric([name], queued)
            peak.add_metric([name], pool.peak_running)
        yield from (running, waiting, peak)


class _StateCollector:
    def __init__(self, state: DaemonState) -> None:
        self.state = state

    def collect(self):
        now = datetime.now(timezone.utc)
        up = GaugeMetricFamily("forecaster_scheduler_running", "1 while the daemon's scheduler runs.")
        up.add_metric([], 1.0 if self.state.running else 0.0)
        yield up
        gauges = {
            "candle_ts": GaugeMetricFamily("forecaster_last_candle_open_time_seconds",
                                           "open_time of the newest stored candle (Unix time).", labels=["market"]),
            "candle_age": GaugeMetricFamily("forecaster_last_candle_age_seconds",
                                            "Seconds since the newest stored candle closed.", labels=["market"]),
            "lag": GaugeMetricFamily("forecaster_candle_lag_hours",
                                     "Hours of closed candles after the newest stored one (0 while it is the last closed candle; "
                                     "+Inf while the market has no candle at all).", labels=["market"]),
            "coverage": GaugeMetricFamily("forecaster_band_coverage_7d", "Share of the live forecasts of the last 7 days "
                                          "(up to the newest candle) whose truth fell inside the 80% band.", labels=["market"]),
            "coverage_n": GaugeMetricFamily("forecaster_band_coverage_7d_forecasts",
                                            "Live forecasts scored in forecaster_band_coverage_7d.", labels=["market"]),
            "origin": GaugeMetricFamily("forecaster_forecast_origin_time_seconds",
                                        "Origin of the newest live forecast (Unix time).", labels=["market"]),
            "model_id": GaugeMetricFamily("forecaster_model_run_id", "id of the promoted model run.",
                                          labels=["market"]),
            "model_age": GaugeMetricFamily("forecaster_model_age_seconds",
                                           "Seconds since the promoted model finished training.", labels=["market"]),
            **{k: GaugeMetricFamily(f"forecaster_model_{k}", f"{k} of the promoted model on its validation slice.",
                                    labels=["market"]) for k in _MODEL_FIGURES},
        }
        for market, st in self.state.snapshot().items():
            label = [str(market)]
            if st.newest_candle:
                step = market.step
                gauges["candle_ts"].add_metric(label, st.newest_candle.timestamp())
                gauges["candle_age"].add_metric(label, (now - st.newest_candle - step.step).total_seconds())
                gauges["lag"].add_metric(label, step.closed_after(st.newest_candle, now) * step.minutes / 60)
            else:  # never ingested (an unlisted market, an exchange down since the start): infinitely late
                gauges["lag"].add_metric(label, float("inf"))
            if st.coverage_7d:
                gauges["coverage"].add_metric(label, st.coverage_7d[0])
                gauges["coverage_n"].add_metric(label, st.coverage_7d[1])
            if st.newest_origin:
                gauges["origin"].add_metric(label, st.newest_origin.timestamp())
            if st.model:
                gauges["model_id"].add_metric(label, st.model["id"])
                if st.model["finished_at"]:
                    gauges["model_age"].add_metric(label, (now - st.model["finished_at"]).total_seconds())
                for k in _MODEL_FIGURES:
                    if st.model[k] is not None:
                        gauges[k].add_metric(label, st.model[k])
        yield from gauges.values()
        yield from market_health_gauges(self.state.snapshot())


class HealthServer:
    """`/healthz` and `/metrics` on a background thread; `port=0` in settings means no server at all.
    It listens on 127.0.0.1 unless told otherwise (FORECASTER_HTTP_HOST): metrics are not for the
    whole network. Bursts and stalled clients are bounded by jobs/runtime/http_server.py."""

    def __init__(self, state: DaemonState, metrics: Metrics, port: int, host: str = "127.0.0.1",
                 pages=None) -> None:
        """`pages`: jobs.web.pages.Pages, serving `/` and `/market/<key>` beside the endpoints."""
        handler = type("Handler", (_Handler,), {"state": state, "metrics": metrics, "pages": pages})
        try:
            self._httpd = BoundedHTTPServer((host, port), handler)
        except OSError as e:
            raise JobError(f"FORECASTER_HTTP_HOST {host} / FORECASTER_HTTP_PORT {port}: cannot listen: "
                           f"{e.strerror or e}") from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="health-http", daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    @property
    def host(self) -> str:
        return self._httpd.server_address[0]

    def close(self) -> None:
        self._httpd.close()
        if self._thread.ident is not None:  # started
            self._thread.join(2)


class _Handler(BaseHTTPRequestHandler):
    state: DaemonState
    metrics: Metrics
    pages = None

    def log_message(self, *args) -> None:  # scrapes every few seconds would flood the log
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            healthy, body = self.state.health()
            self._send(200 if healthy else 503, "application/json", json.dumps(body).encode())
        elif path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, self.metrics.render())
        elif self.pages is not None and (page := self.pages.answer(self.path)) is not None:
            self._send(page.status, page.content_type, page.body)
        else:
            self._send(404, "text/plain", b"not found: try /, /healthz or /metrics\n")

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
