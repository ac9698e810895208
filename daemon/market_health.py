"""What makes one market unhealthy beyond its candles (issue 21): forecasts that stall while candles
keep arriving (every predict failing, for instance), and trainings that keep failing. Each rule
gives a reason that /healthz shows; the figures are exported as metrics too.

- Forecast lag: candles of the market's interval between the newest live forecast's origin and the
  newest stored candle; more than FORECASTER_HEALTHZ_MAX_LAG_HOURS of them (in the market's steps,
  like the candle lag) is unhealthy. A market without a promoted model has no forecast to lag.
- Trainings: TRAIN_FAILURES_UNHEALTHY failed trainings in a row (with no ok one since) is unhealthy,
  with or without an older promoted model: such a market will never get a fresh one by itself.
"""
from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

TRAIN_FAILURES_UNHEALTHY = 3


def forecast_lag(market, st) -> float | None:
    """Candles after the newest forecast's origin up to the newest candle; None without a model;
    inf with a model and candles but no forecast yet."""
    if st.model is None or st.newest_candle is None:
        return None
    if st.newest_origin is None:
        return float("inf")
    return max(0.0, (st.newest_candle - st.newest_origin) / market.period.step)


def market_problems(market, st, max_lag: float) -> list[str]:
    """Why a market with recent candles is still unhealthy (empty: it is not)."""
    problems = []
    lag = forecast_lag(market, st)
    if lag is not None and lag > max_lag:
        behind = "no live forecast yet" if lag == float("inf") else f"the newest forecast is {lag:.0f} candles behind"
        problems.append(f"{behind} the newest candle (at most {max_lag:g} allowed): predict is failing or not run")
    if st.train_failures >= TRAIN_FAILURES_UNHEALTHY:
        problems.append(f"the last {st.train_failures} trainings failed: {st.train_error or '?'}")
    return problems


def market_health_gauges(snapshot: dict):
    lag = GaugeMetricFamily("forecaster_forecast_lag_steps", "Candles of the market's interval between the newest "
                            "live forecast's origin and the newest stored candle (with a promoted model).",
                            labels=["market"])
    failures = GaugeMetricFamily("forecaster_train_failures_in_a_row", "Failed trainings since the last ok one "
                                 f"(counted up to {TRAIN_FAILURES_UNHEALTHY}).", labels=["market"])
    for market, st in snapshot.items():
        value = forecast_lag(market, st)
        if value is not None and value != float("inf"):
            lag.add_metric([str(market)], value)
        failures.add_metric([str(market)], st.train_failures)
    yield from (lag, failures)
