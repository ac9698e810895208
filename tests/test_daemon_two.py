"""Two daemons on one Postgres, two markets: both markets served, no job runs twice at once for
the same market, no row written twice, each new hour ingested once, one model trained per market."""
from __future__ import annotations

import signal

import pytest

from db.engine import make_engine
from db.migrate import upgrade
from tests.helpers.daemon_harness import (MarketFeed, as_utc, daemon_env, free_port, newest_live_origin,
                                          overlapping_runs, query, scalar, start_daemon)
from tests.helpers.fake_exchange import FakeExchange

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
MARKETS = ["bithumb:ETH-KRW", "binance:ETH-USDT"]


def test_two_daemons_share_one_postgres(pg_url, start_daemon):
    engine = make_engine(pg_url)
    upgrade(engine)
    with FakeExchange() as fake:
        feeds = {m: MarketFeed(fake, m, hours=600, held_back=3) for m in MARKETS}
        env = daemon_env(pg_url, fake, MARKETS, ingest_cron="*/2 * * * * *", backfill_days=20)
        a = start_daemon(env, "a")
        b = start_daemon({**env, "FORECASTER_HTTP_PORT": str(free_port())}, "b")

        def caught_up():
            return all(as_utc(newest_live_origin(engine, m)) == feeds[m].newest for m in MARKETS)
        a.wait_for(caught_up, "both markets forecast", timeout=120)
        for _ in range(2):
            for feed in feeds.values():
                feed.release(1)
            a.wait_for(caught_up, "forecasts of the new hours", timeout=40)
        assert b.alive()
        for d in (a, b):
            health = d.get("/healthz")
            assert health.status_code == 200, health.text
        rcs = [a.terminate()[0], b.terminate(sig=signal.SIGINT)[0]]  # Ctrl-C stops it the same way
    assert rcs == [0, 0]

    assert overlapping_runs(engine) == []
    for m in MARKETS:
        ex, sym = m.split(":")
        # One training per market: the daemon that lost the race never trained a second model.
        runs = query(engine, "SELECT status FROM model_runs WHERE exchange = :ex AND symbol = :sym", ex=ex, sym=sym)
        assert [r.status for r in runs] == ["promoted"]
        stored = [as_utc(r[0]) for r in query(engine, "SELECT open_time FROM candles WHERE exchange = :ex AND "
                                                      "symbol = :sym ORDER BY open_time", ex=ex, sym=sym)]
        assert stored == feeds[m].served_since(stored[0] - (stored[1] - stored[0]))
        assert scalar(engine, "SELECT count(*) FROM predictions WHERE exchange = :ex AND symbol = :sym",
                      ex=ex, sym=sym) == 24 * 3
        # Each new hour was ingested once, by one of the daemons: the back-fill and two releases.
        assert scalar(engine, "SELECT count(*) FROM job_runs WHERE job = 'ingest' AND status = 'ok' AND rows > 0 "
                              "AND exchange = :ex AND symbol = :sym", ex=ex, sym=sym) == 3
    for d in (a, b):
        assert "Traceback" not in d.log()
    # Both daemons did work: each ran some ingest itself.
    assert "status=ok" in a.log() and "status=ok" in b.log()
    engine.dispose()
