"""Two daemons on one Postgres, and daemon A loses its training lock in the middle of a training
(its lock's backend is terminated, as a Postgres restart or a network cut would end it): A must
notice between epochs and stop without writing, while B takes the lock and trains; no model run
ends `promoted` (or trained, rejected) after another worker marked it abandoned."""
from __future__ import annotations

import json
import socket
import time

import psycopg
import pytest

from db.engine import make_engine
from db.migrate import upgrade
from tests.helpers.daemon_harness import SLOW_MODEL, MarketFeed, daemon_env, free_port, query, scalar, start_daemon
from tests.helpers.fake_exchange import FakeExchange
from tests.helpers.postgres import PG_ADMIN_URL

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
MARKET = "bithumb:ETH-KRW"


def lock_backends(daemon_pid: int, job: str, market: str) -> list[int]:
    """The Postgres backends holding a daemon's lock of one job and market."""
    name = f"forecaster {socket.gethostname()} pid {daemon_pid} {job} {market}"[:63]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        return [pid for (pid,) in admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                                                (name,))]


def test_a_daemon_that_loses_its_lock_mid_training_stops_without_writing(pg_url, start_daemon):
    engine = make_engine(pg_url)
    upgrade(engine)
    with FakeExchange() as fake:
        MarketFeed(fake, MARKET, hours=600, held_back=3)
        env = daemon_env(pg_url, fake, [MARKET], model_overrides=json.dumps(SLOW_MODEL))
        a = start_daemon(env, "a")
        a.wait_for(lambda: scalar(engine, "SELECT count(*) FROM model_runs WHERE status = 'training'"),
                   "A's training under way", timeout=90)
        b = start_daemon({**env, "FORECASTER_HTTP_PORT": str(free_port())}, "b")
        # B asks to train after each of its ingests and finds the lock taken.
        b.wait_for(lambda: "status=skipped" in b.log() and "job=train" in b.log(), "B skipping A's training")
        (backend,) = a.wait_for(lambda: lock_backends(a.proc.pid, "train", MARKET), "A's lock connection")
        first_run = scalar(engine, "SELECT id FROM model_runs WHERE status = 'training'")

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        cut_at = time.monotonic()
        # A notices at its next epoch and stops; B takes the lock and trains.
        a.wait_for(lambda: scalar(engine, "SELECT status FROM model_runs WHERE id = :id", id=first_run) == "failed",
                   "A's run to end failed", timeout=30)
        a.wait_for(lambda: "lost the train lock" in a.log(), "A to say it lost its lock", timeout=15)
        stopped_after = time.monotonic() - cut_at
        # The lock is free: the next training (B's, or A's next attempt) runs to the end and is promoted.
        b.wait_for(lambda: scalar(engine, "SELECT count(*) FROM model_runs WHERE status = 'promoted'"),
                   "a promoted model", timeout=180)
        assert a.alive() and b.alive()
        rcs = [a.terminate()[0], b.terminate()[0]]
    assert rcs == [0, 0]
    assert stopped_after < 15, stopped_after
    runs = query(engine, "SELECT id, status, error FROM model_runs ORDER BY id")
    first = next(r for r in runs if r.id == first_run)
    assert first.status == "failed"
    # No run that another worker marked abandoned (or that lost its lock) ended trained or promoted.
    assert [r for r in runs if r.status in ("trained", "promoted", "rejected", "retired") and r.error] == []
    assert scalar(engine, "SELECT count(*) FROM model_weights WHERE model_run_id = :id", id=first_run) == 0
    a_train = query(engine, "SELECT status, message FROM job_runs WHERE job = 'train' AND status = 'failed' "
                            "ORDER BY id LIMIT 1")[0]
    assert "lost the train lock" in a_train.message or "abandoned" in a_train.message, a_train.message
    assert "lost the train lock of bithumb:ETH-KRW" in a.log()
    for d in (a, b):
        assert "Traceback" not in d.log()
    engine.dispose()
