"""/healthz looks at forecasts and trainings too (issue 21, item 4): a market whose newest forecast
stalls while candles keep arriving, or whose trainings keep failing, makes it say 503 with the
reason, and both figures are metrics."""
from __future__ import annotations

import pytest

from daemon.market_health import TRAIN_FAILURES_UNHEALTHY
from daemon.state import DaemonState
from db.job_runs import finish_job_run, start_job_run
from db.engine import make_engine
from db.job_runs import finish_job_run, start_job_run
from db.migrate import upgrade
from exchanges.base import parse_market
from tests.helpers.daemon_harness import MarketFeed, as_utc, daemon_env, newest_live_origin, start_daemon  # noqa: F401
from tests.helpers.fake_exchange import FakeExchange

MARKET = "binance:ETH-USDT"


def _record_trainings(sessions, market, statuses):
    for status in statuses:
        with sessions() as s, s.begin():
            run = start_job_run(session=s, job="train", market=market)
            finish_job_run(session=s, run_id=run, status=status, rows=0,
                           message="need at least 400 candles" if status == "failed" else "promoted")


def test_trainings_that_keep_failing_make_the_market_unhealthy_until_one_succeeds(migrated):
    _, _, sessions = migrated
    market = parse_market(MARKET)
    state = DaemonState.for_markets([market], max_lag_hours=3)
    state.running = True
    _record_trainings(sessions, market, ["ok"] + ["failed"] * (TRAIN_FAILURES_UNHEALTHY - 1))
    state.refresh(sessions, market)
    assert state.markets[market].train_failures == TRAIN_FAILURES_UNHEALTHY - 1
    assert not any("trainings failed" in r for r in state.health()[1]["reasons"])
    _record_trainings(sessions, market, ["failed"])
    state.refresh(sessions, market)
    healthy, body = state.health()
    assert not healthy
    assert f"{MARKET}: the last {TRAIN_FAILURES_UNHEALTHY} trainings failed: need at least 400 candles" in body["reasons"]
    _record_trainings(sessions, market, ["ok"])
    state.refresh(sessions, market)
    assert state.markets[market].train_failures == 0


@pytest.mark.slow
def test_healthz_turns_503_when_forecasts_stall_while_candles_arrive(sqlite_url, start_daemon):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with FakeExchange() as fake:
        feed = MarketFeed(fake, MARKET, hours=600, held_back=12)
        daemon = start_daemon(daemon_env(sqlite_url, fake, [MARKET]))
        daemon.wait_for(lambda: as_utc(newest_live_origin(engine, MARKET)) == feed.newest, "the first forecast",
                        timeout=90)
        # The next 12 hours come out, but the exchange lacks 6 of them: a gap in the model's lookback
        # that no forecast can bridge, so every predict fails while the candles catch up.
        released = feed.released
        fake.set_candles(MARKET, feed.series[:released] + feed.series[released + 6:])
        def stalled():
            r = daemon.get("/healthz")
            body = r.json()
            return r.status_code == 503 and any(
                x.startswith(f"{MARKET}: the newest forecast is 12 candles behind the newest candle")
                for x in body["reasons"]) and body
        health = daemon.wait_for(stalled, "a 503 for the stalled forecasts", timeout=30)
        assert health["markets"][MARKET]["lag_steps"] <= 3  # the candles themselves are up to date
        metrics = daemon.get("/metrics").text
        assert f'forecaster_forecast_lag_steps{{market="{MARKET}"}} 12.0' in metrics
        assert f'forecaster_train_failures_in_a_row{{market="{MARKET}"}} 0.0' in metrics
