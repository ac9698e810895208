"""A retrain schedule's slot is trained in full (issue 21, item 3): a real database restart in the
middle of it pauses the training instead of dropping the markets left. (A daemon started after a
slot it missed trains the markets it owes at once: tests/test_daemon_decisions.py, in-process.)"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import make_url

from db.engine import make_engine
from db.migrate import upgrade
from tests.helpers.daemon_harness import MarketFeed, TINY_MODEL, as_utc, daemon_env, query, start_daemon  # noqa: F401
from tests.helpers.fake_exchange import KRW_CSV, FakeExchange
from tests.helpers.postgres import set_database_open

pytestmark = [pytest.mark.slow]
MARKETS = [f"upbit:{s}-KRW" for s in ("ETH", "AAA", "BBB")]
# A second or two per training, so that the database can go away in the middle of the slot.
SLOWER = {**TINY_MODEL, "hidden_size": 24, "max_epochs": 12, "patience": 100}


def feeds(fake):
    return [MarketFeed(fake, m, hours=600, held_back=0, source=(KRW_CSV, f"2023-06-{1 + 3 * i:02d}T00:00:00"))
            for i, m in enumerate(MARKETS)]


def once_at(t: datetime) -> str:
    """A crontab (seconds first) that fires at `t` and then not again for a day."""
    return f"{t.second} {t.minute} {t.hour} * * *"


def trained_since(engine, slot: datetime) -> dict[str, str]:
    rows = query(engine, "SELECT exchange || ':' || symbol AS market, status, started_at FROM model_runs "
                         "WHERE status <> 'training' ORDER BY id")
    return {r.market: r.status for r in rows if as_utc(r.started_at) >= slot}


def first_models(engine) -> int:
    return len(query(engine, "SELECT id FROM model_runs WHERE status = 'promoted'"))


@pytest.mark.postgres
def test_a_database_restart_in_the_middle_of_a_retrain_still_trains_every_market_of_the_slot(pg_url, start_daemon):
    engine = make_engine(pg_url)
    upgrade(engine)
    with FakeExchange() as fake:
        feeds(fake)
        slot = (datetime.now(timezone.utc) + timedelta(seconds=40)).replace(microsecond=0)
        env = daemon_env(pg_url, fake, MARKETS, model_overrides=json.dumps(SLOWER), retrain_cron=once_at(slot),
                         train_workers=1)
        daemon = start_daemon(env)
        daemon.wait_for(lambda: first_models(engine) == 3, "the first models", timeout=60)
        assert datetime.now(timezone.utc) < slot, "the first trainings took past the retrain slot"
        daemon.wait_for(lambda: query(engine, "SELECT id FROM model_runs WHERE started_at >= :s", s=slot),
                        "the slot's first training", timeout=60, every=0.05)
        set_database_open(make_url(pg_url).database, False)  # what a Postgres restart does to this database
        try:
            time.sleep(3)
        finally:
            set_database_open(make_url(pg_url).database, True)
        daemon.wait_for(lambda: len(trained_since(engine, slot)) == 3, "every market trained for the slot",
                        timeout=60)
        done = query(engine, "SELECT done_for FROM job_locks WHERE job = 'train'")
        assert sorted(as_utc(r.done_for) for r in done) == [slot] * 3
        assert "retrain of the" in daemon.log() and "paused" in daemon.log()
