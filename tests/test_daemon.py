"""`forecaster run` as a user runs it, on a SQLite file, against the fake exchange: catch-up from an
empty store, live forecasts, new hours bring new forecasts, /healthz and /metrics, `forecaster
status`, a second daemon refused, SIGTERM."""
from __future__ import annotations

import json

import pytest

from db.engine import make_engine
from db.migrate import upgrade
from tests.helpers.cli import run_cli
from tests.helpers.daemon_harness import (MarketFeed, as_utc, daemon_env, newest_candle, newest_live_origin,
                                          overlapping_runs, query, scalar, start_daemon)
from tests.helpers.fake_exchange import FakeExchange

pytestmark = pytest.mark.slow
MARKET = "bithumb:ETH-KRW"
SIGTERM_PROMISE_S = 5.0


def test_daemon_catches_up_forecasts_follows_new_hours_and_stops_on_sigterm(sqlite_url, start_daemon):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with FakeExchange() as fake:
        feed = MarketFeed(fake, MARKET, hours=700, held_back=5)  # the store will lag 5 h: unhealthy
        env = daemon_env(sqlite_url, fake, [MARKET], healthz_max_lag_steps=2, backfill_days=20)
        daemon = start_daemon(env)
        # Catch-up: back-fill, train (no model yet), forecast the newest origin.
        daemon.wait_for(lambda: as_utc(newest_live_origin(engine, MARKET)) == feed.newest,
                        "the first live forecast", timeout=90)
        stored = [as_utc(r[0]) for r in query(engine, "SELECT open_time FROM candles ORDER BY open_time")]
        assert stored == feed.served_since(stored[0] - (stored[1] - stored[0])), "gaps or extra candles"
        assert len(stored) >= 20 * 24 - 5 - 2
        model = query(engine, "SELECT id, status, val_rmae, val_coverage FROM model_runs")
        assert len(model) == 1 and model[0].status == "promoted" and model[0].val_rmae > 0
        assert scalar(engine, "SELECT count(*) FROM predictions WHERE kind='live'") == 24

        health = daemon.get("/healthz")
        assert health.status_code == 503
        assert health.json()["markets"][MARKET]["ok"] is False and health.json()["scheduler"] == "running"

        # Time passes: the exchange closes more hours; each one gets stored and forecast.
        for _ in range(2):
            newest = feed.release(2)
            daemon.wait_for(lambda: as_utc(newest_live_origin(engine, MARKET)) == newest,
                            f"a forecast from {newest}", timeout=30)
        assert as_utc(newest_candle(engine, MARKET)) == feed.newest
        health = daemon.get("/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["markets"][MARKET]["lag_hours"] <= 2
        origins = scalar(engine, "SELECT count(DISTINCT origin_time) FROM predictions WHERE kind='live'")
        assert origins >= 3

        metrics = daemon.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["Content-Type"].startswith("text/plain")
        for line in (f'forecaster_job_runs_total{{job_name="ingest",market="{MARKET}",status="ok"}}',
                     f'forecaster_job_duration_seconds_bucket{{job_name="train",le="1.0",market="{MARKET}"}}',
                     f'forecaster_last_candle_age_seconds{{market="{MARKET}"}}',
                     f'forecaster_model_val_rmae{{market="{MARKET}"}}',
                     f'forecaster_model_val_coverage{{market="{MARKET}"}}', "forecaster_scheduler_running 1.0"):
            assert line in metrics.text, line
        assert daemon.get("/nothing").status_code == 404

        # One daemon per SQLite file: a second one is refused at once with a clear line.
        second = run_cli("run", env=env, timeout=60)
        assert second.returncode == 1
        assert "another `forecaster run`" in second.stderr and "forecaster.db" in second.stderr
        assert daemon.alive()

        # `forecaster status`, for people and for scripts.
        text = run_cli("status", env=env, timeout=60)
        assert text.returncode == 0, text.stderr
        assert MARKET in text.stdout and "promoted model  run 1" in text.stdout
        assert f"newest forecast origin {feed.newest:%Y-%m-%dT%H:%M}Z" in text.stdout
        report = json.loads(run_cli("status", "--json", env=env, timeout=60).stdout)
        (m,) = report["markets"]
        assert m["newest_candle"] == f"{feed.newest:%Y-%m-%dT%H:%M:%S}Z" and m["model"]["id"] == 1
        # Ingest runs every 3 s here: status may catch one in flight, after one that went through.
        ingest = m["jobs"]["ingest"]
        assert ingest["status"] in ("ok", "running") and ingest["last_ok_at"] is not None, ingest
        assert m["jobs"]["train"]["status"] == "ok"
        rc, seconds = daemon.terminate()
    log = daemon.log()
    assert rc == 0 and seconds < SIGTERM_PROMISE_S, (rc, seconds, log[-2000:])
    assert "stopped in" in log and "Traceback" not in log
    assert overlapping_runs(engine) == []
    assert scalar(engine, "SELECT count(*) FROM job_runs WHERE status = 'running'") == 0
    engine.dispose()
