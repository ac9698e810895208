"""The daemon's `/metrics` (Prometheus text format), from a registry private to the daemon, built at
start: counters of job runs updated as jobs run, and gauges read from DaemonState at each scrape."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from daemon.market_health import market_health_gauges
from daemon.state import MODEL_FIGURES, DaemonState
from core.market import Market

JOB_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    """Counters the daemon updates as jobs run, plus gauges read from DaemonState at each scrape."""

    def __init__(self, state: DaemonState, pools: dict | None = None) -> None:
        """`pools`: as for `watch_pools`; a daemon builds its Metrics before its pools (their jobs
        report to it) and hands the pools over with `watch_pools` once they exist."""
        self.registry = CollectorRegistry()
        # `job_name`, not `job`: Prometheus gives every scraped series its scrape job's `job` label and
        # renames a series' own `job` to `exported_job`, which merged ingest, train and predict.
        self.job_runs = Counter("forecaster_job_runs", "Job runs by outcome (ok, failed, skipped).",
                                ["job_name", "market", "status"], registry=self.registry)
        self.job_seconds = Histogram("forecaster_job_duration_seconds", "Wall time of job runs that ran.",
                                     ["job_name", "market"], buckets=JOB_BUCKETS, registry=self.registry)
        self.registry.register(_StateCollector(state))
        if pools:
            self.watch_pools(pools)

    def watch_pools(self, pools: dict) -> None:
        """Export the load of worker pools: name -> object with counts() -> (running, waiting) and
        peak_running."""
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
        now = self.state.clock.now()
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
                                    labels=["market"]) for k in MODEL_FIGURES},
        }
        for market, st in self.state.snapshot().items():
            label = [str(market)]
            if st.newest_candle:
                step = market.period
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
                for k in MODEL_FIGURES:
                    if st.model[k] is not None:
                        gauges[k].add_metric(label, st.model[k])
        yield from gauges.values()
        yield from market_health_gauges(self.state.snapshot())
