"""Two daemons on one Postgres; daemon A is frozen (SIGSTOP, as a paused VM) in the middle of a
training it claimed (issue 21, item 5). Its claim expires with its lease: daemon B ends A's lock
connections, marks A's run abandoned and trains the market itself; A, woken, stops without writing."""
from __future__ import annotations

import json
import signal

import pytest

from db.engine import make_engine
from db.migrate import upgrade
from tests.helpers.daemon_harness import SLOW_MODEL, MarketFeed, daemon_env, free_port, scalar, start_daemon  # noqa: F401
from tests.helpers.fake_exchange import FakeExchange

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
MARKET = "bithumb:ETH-KRW"
LEASE_S = 4
# 100 epochs that early stopping never ends: a training of 10-30 s here, long enough to freeze A in
# the middle of it (the LSTM, off by default, keeps a training under way for as long as that).


def test_a_frozen_daemons_claim_passes_to_the_other_daemon_within_its_lease(pg_url, start_daemon):
    engine = make_engine(pg_url)
    upgrade(engine)
    with FakeExchange() as fake:
        MarketFeed(fake, MARKET, hours=600, held_back=3)
        env = daemon_env(pg_url, fake, [MARKET], model_overrides=json.dumps(SLOW_MODEL), lock_lease_seconds=LEASE_S)
        a = start_daemon(env, "a")
        a.wait_for(lambda: scalar(engine, "SELECT count(*) FROM model_runs WHERE status = 'training'"),
                   "A's training under way", timeout=90)
        first_run = scalar(engine, "SELECT id FROM model_runs WHERE status = 'training'")
        b = start_daemon({**env, "FORECASTER_HTTP_PORT": str(free_port())}, "b")
        b.wait_for(lambda: "job=train" in b.log() and "status=skipped" in b.log(), "B finding A's claim held")
        # A skip is logged and counted, not written: with two daemons it would be a row per tick.
        assert scalar(engine, "SELECT count(*) FROM job_runs WHERE status = 'skipped'") == 0
        a.proc.send_signal(signal.SIGSTOP)
        try:
            # The lease runs out, B ends A's lock connections and claims the training itself.
            b.wait_for(lambda: scalar(engine, "SELECT status FROM model_runs WHERE id = :id", id=first_run) == "failed",
                       "B to take over A's claim", timeout=3 * LEASE_S)
            b.wait_for(lambda: scalar(engine, "SELECT count(*) FROM model_runs WHERE id > :id", id=first_run),
                       "B's own training", timeout=LEASE_S)
            # Logged once A's connections are ended: B's claim may come first.
            b.wait_for(lambda: "expired (frozen or gone" in b.log(), "B to say A's lease expired", timeout=5)
        finally:
            a.proc.send_signal(signal.SIGCONT)
        # A wakes up to a lost lock: it stops without writing; B's training goes on.
        a.wait_for(lambda: "lost the train lock" in a.log(), "A to notice its lock is gone", timeout=30)
        assert scalar(engine, "SELECT count(*) FROM model_weights WHERE model_run_id = :id", id=first_run) == 0
        assert a.alive() and b.alive()
        assert [a.terminate()[0], b.terminate()[0]] == [0, 0]
    engine.dispose()
