"""The daemon on Postgres through faults: a training that fails (too little history), exchange
timeouts, HTTP 500, an HTML error page, Bithumb status 5600, and the database going away during
runs. Each fault is one log line and (when the database can be written) a `failed` job run; the
daemon keeps running and catches up once the fault is gone."""
from __future__ import annotations

import time

import pytest
from sqlalchemy.engine import make_url

from db.engine import make_engine
from db.migrate import upgrade
from tests.helpers.daemon_harness import (MarketFeed, as_utc, daemon_env, newest_candle, newest_live_origin, query,
                                          scalar, start_daemon)
from tests.helpers.fake_exchange import FakeExchange
from tests.helpers.postgres import set_database_open

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
MARKET = "bithumb:ETH-KRW"


def failed_ingests(engine) -> list[str]:
    return [r.message for r in query(engine, "SELECT message FROM job_runs WHERE job = 'ingest' "
                                             "AND status = 'failed' ORDER BY id")]


def test_daemon_survives_faults_and_catches_up(pg_url, start_daemon):
    engine = make_engine(pg_url)
    upgrade(engine)
    db_name = make_url(pg_url).database
    with FakeExchange() as fake:
        # 150 hours only: too few to train on, so the first training fails.
        feed = MarketFeed(fake, MARKET, hours=650, held_back=500)
        env = daemon_env(pg_url, fake, [MARKET], http_timeout_seconds=1, ingest_cron="*/2 * * * * *",
                         backfill_days=27)  # the 650-hour series reaches back that far
        daemon = start_daemon(env)
        daemon.wait_for(lambda: scalar(engine, "SELECT count(*) FROM job_runs WHERE job = 'train' AND status = 'failed'"),
                        "the first training to fail", timeout=60)
        message = scalar(engine, "SELECT message FROM job_runs WHERE job = 'train' AND status = 'failed'")
        assert "need at least" in message
        assert scalar(engine, "SELECT count(*) FROM model_runs WHERE status = 'promoted'") == 0
        assert daemon.get("/healthz").status_code == 503  # 500 hours behind

        # The exchange misbehaves in four ways, one ingest each (the client retries 5xx and timeouts
        # 3 times, so each fault is served 4 times), while the missing hours become available.
        for kind, times in (("500", 4), ("html", 4), ("bithumb_5600", 1), ("timeout", 4)):
            fake.fail_next(kind, times=times, path_contains="/bithumb/")
        feed.release(498)
        daemon.wait_for(lambda: len(failed_ingests(engine)) >= 4, "four failed ingests", timeout=90)
        fails = failed_ingests(engine)
        assert "HTTP 500" in fails[0] and "502" in fails[1] and "status 5600" in fails[2] and "timed out" in fails[3]
        # Then it catches up: all hours stored, a model trained and promoted, a forecast at the newest hour.
        daemon.wait_for(lambda: as_utc(newest_live_origin(engine, MARKET)) == feed.newest, "catch-up", timeout=90)
        assert scalar(engine, "SELECT count(*) FROM model_runs WHERE status = 'promoted'") == 1
        assert daemon.get("/healthz").status_code == 200

        # The database goes away in the middle of an ingest (its exchange request stalls for 0.9 s),
        # stays away for a few runs, and an hour closes meanwhile.
        requests_before = fake.count("/bithumb/")
        fake.fail_next("timeout", path_contains="/bithumb/", delay=0.9)
        daemon.wait_for(lambda: fake.count("/bithumb/") > requests_before, "an ingest in flight", every=0.02)
        set_database_open(db_name, False)
        try:
            newest = feed.release(1)
            time.sleep(5)
            assert daemon.alive()
            assert daemon.get("/healthz").status_code in (200, 503)  # it still answers
        finally:
            set_database_open(db_name, True)
        daemon.wait_for(lambda: as_utc(newest_live_origin(engine, MARKET)) == newest, "catch-up after the outage",
                        timeout=60)
        rc, _ = daemon.terminate()
    log = daemon.log()
    assert rc == 0
    assert "Traceback" not in log
    db_failures = [line for line in log.splitlines() if "status=failed" in line and "database" in line]
    assert len(db_failures) >= 2, log[-3000:]
    # The ingest cut off mid-run could not record its end; the next ingest marked it failed.
    cut_off = query(engine, "SELECT message FROM job_runs WHERE job = 'ingest' AND message LIKE 'abandoned%'")
    assert len(cut_off) == 1 and "lost the database" in cut_off[0].message
    assert all(len(line) < 600 for line in log.splitlines())
    # Each failed ingest says when the daemon tries again and what works without the network.
    retries = [line for line in log.splitlines() if "the daemon tries again at" in line]
    assert len(retries) >= 4 and all(f"forecaster import-csv PATH --market {MARKET}" in line for line in retries)
    # Nothing stored was lost: every hour served since the back-fill began is there once.
    stored = [as_utc(r[0]) for r in query(engine, "SELECT open_time FROM candles ORDER BY open_time")]
    assert stored == feed.served_since(stored[0] - (stored[1] - stored[0])) and stored[-1] == newest
    assert as_utc(newest_candle(engine, MARKET)) == newest
    assert scalar(engine, "SELECT count(*) FROM job_runs WHERE status = 'running'") == 0
    engine.dispose()
