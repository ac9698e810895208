"""kill -9 during an ingest and during a training, then restarts: nothing stored is lost or doubled,
the promoted model survives, the runs the dead process left `running`/`training` are marked failed;
SIGTERM during a training abandons it (never promoted) and exits 0 within the promised time."""
from __future__ import annotations

import json

import pytest

from db.engine import make_engine
from db.migrate import upgrade
from tests.helpers.daemon_harness import (TINY_MODEL, MarketFeed, as_utc, daemon_env, newest_live_origin, query, scalar,
                                          start_daemon)
from tests.helpers.fake_exchange import FakeExchange

pytestmark = pytest.mark.slow
MARKET = "bithumb:ETH-KRW"
# Hundreds of epochs that early stopping never ends: a training that lasts long enough to be killed.
# the LSTM (off by default) keeps a training under way for as long as the test needs one
SLOW_MODEL = {**TINY_MODEL, "hidden_size": 64, "max_epochs": 1000, "patience": 1000, "batch_size": 16, "learned": "lstm"}
SIGTERM_PROMISE_S = 5.0


def test_kill_9_during_ingest_and_training_then_restart(sqlite_url, start_daemon):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with FakeExchange() as fake:
        feed = MarketFeed(fake, MARKET, hours=600, held_back=4)
        tiny = daemon_env(sqlite_url, fake, [MARKET], backfill_days=20)
        slow = {**tiny, "FORECASTER_MODEL_OVERRIDES": json.dumps(SLOW_MODEL),
                "FORECASTER_RETRAIN_CRON": "*/4 * * * * *"}

        first = start_daemon(tiny, "first")
        first.wait_for(lambda: as_utc(newest_live_origin(engine, MARKET)) == feed.newest, "catch-up", timeout=90)
        (promoted,) = query(engine, "SELECT id FROM model_runs WHERE status = 'promoted'")

        # The exchange stalls on the next request; kill the daemon while its ingest waits for it.
        feed.release(2)
        fake.fail_next("timeout", path_contains="/bithumb/", delay=60)
        first.wait_for(lambda: scalar(engine, "SELECT count(*) FROM job_runs WHERE job = 'ingest' AND status = 'running'"),
                       "an ingest in flight")
        first.kill()
        (stale_ingest,) = query(engine, "SELECT id FROM job_runs WHERE status = 'running'")

        second = start_daemon(slow, "second")  # the SQLite file lock died with the first daemon
        second.wait_for(lambda: as_utc(newest_live_origin(engine, MARKET)) == feed.newest, "catch-up after kill")
        row = query(engine, "SELECT status, message FROM job_runs WHERE id = :id", id=stale_ingest.id)[0]
        assert row.status == "failed" and "abandoned" in row.message
        # Kill it again, this time in the middle of a training.
        second.wait_for(lambda: scalar(engine, "SELECT count(*) FROM model_runs WHERE status = 'training'"),
                        "a training under way", timeout=60)
        second.kill()

        third = start_daemon(slow, "third")
        third.wait_for(lambda: scalar(engine, "SELECT count(*) FROM model_runs WHERE status = 'failed' "
                                              "AND error LIKE 'abandoned%'"), "the killed training marked failed")
        assert scalar(engine, "SELECT id FROM model_runs WHERE status = 'promoted'") == promoted.id
        assert scalar(engine, "SELECT count(*) FROM model_weights WHERE model_run_id = :id", id=promoted.id) == 1
        # SIGTERM while the next training runs: it is abandoned, never promoted, and the daemon exits 0.
        third.wait_for(lambda: scalar(engine, "SELECT count(*) FROM model_runs WHERE status = 'training'"),
                       "another training under way", timeout=60)
        rc, seconds = third.terminate()
        assert rc == 0 and seconds < SIGTERM_PROMISE_S, (rc, seconds, third.log()[-2000:])
        # A normal stop: the cancelled training is recorded failed, but nothing is logged as an ERROR.
        errors = [line for line in third.log().splitlines() if " ERROR " in line]
        assert errors == [], errors

    runs = query(engine, "SELECT id, status, error FROM model_runs ORDER BY id")
    assert [r.status for r in runs] == ["promoted", "failed", "failed"]
    assert "abandoned" in runs[1].error and "stopped" in runs[2].error
    assert scalar(engine, "SELECT count(*) FROM job_runs WHERE status = 'running'") == 0
    failed_train = query(engine, "SELECT message FROM job_runs WHERE job = 'train' AND status = 'failed'")
    assert len(failed_train) == 2  # the killed one (abandoned) and the cancelled one
    # The candles are exactly what the exchange served since the back-fill began: none lost, none twice.
    stored = [as_utc(r[0]) for r in query(engine, "SELECT open_time FROM candles ORDER BY open_time")]
    assert stored == feed.served_since(stored[0] - (stored[1] - stored[0]))
    assert stored[-1] == feed.newest
    assert scalar(engine, "SELECT count(*) FROM predictions WHERE kind = 'live' AND origin_time = "
                          "(SELECT max(origin_time) FROM predictions)") == 24
    for d in (first, second, third):
        assert "Traceback" not in d.log()
    engine.dispose()
