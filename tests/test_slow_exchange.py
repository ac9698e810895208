"""An exchange that answers one byte at a time (issue 21, item 2): each try of a request has a
deadline, not only each socket read, and one exchange's stuck markets cannot take every ingest
worker from another exchange's."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from daemon.pools import WorkPool, group_limit_for
from db.engine import make_engine
from db.migrate import upgrade
from exchanges.base import ExchangeError, parse_market
from exchanges.http import make_session
from exchanges.registry import make_client
from tests.helpers.daemon_harness import MarketFeed, as_utc, daemon_env, query, start_daemon  # noqa: F401
from tests.helpers.fake_exchange import KRW_CSV, FakeExchange, load_csv_slice

NOW = datetime(2023, 12, 10, 12, 30, tzinfo=timezone.utc)


def test_a_dripping_answer_fails_at_the_deadline_of_each_try_instead_of_hanging():
    with FakeExchange({"upbit:ETH-KRW": load_csv_slice(KRW_CSV, "2023-12-01T00:00:00Z", 240)}, now=NOW) as fake:
        # A byte every 0.2 s: far under the 1 s read timeout, so only a deadline ends the request.
        fake.fail_next("drip", times=2, path_contains="/upbit/", every=0.2)
        client = make_client("upbit", fake.base_url("upbit"), make_session(retries=1, backoff=0.01),
                             timeout=(0.5, 1), pause=0)
        with pytest.raises(ExchangeError, match=r"no complete answer within 1.5 s .* up to 2 tries\): the server "
                                                "sends too slowly"):
            client.fetch(parse_market("upbit:ETH-KRW"), None, NOW)
        assert fake.count("/upbit/") == 2  # both tries were cut, then it gave up
        # The same client's next request, answered normally, goes through.
        assert len(client.fetch(parse_market("upbit:ETH-KRW"), None, NOW)) > 100


def test_a_group_at_its_limit_leaves_the_free_worker_to_another_group():
    assert group_limit_for(4, 1) == 4 and group_limit_for(4, 2) == 3 and group_limit_for(4, 3) == 1
    pool = WorkPool("test", 2, group_limit=1)
    stuck, done = threading.Event(), threading.Event()
    try:
        assert pool.submit("slow:a", lambda: stuck.wait(10), group="slow")
        assert pool.submit("slow:b", lambda: stuck.wait(10), group="slow")
        assert pool.submit("fast:a", done.set, group="fast")
        assert done.wait(5), "the other group's work waited behind the stuck group"
        assert pool.counts() == (1, 1)  # one slow entry runs, the other waits for its group's room
    finally:
        stuck.set()
        pool.close()


SLOW = [f"upbit:{s}-KRW" for s in ("ETH", "AAA", "BBB", "CCC")]
HEALTHY = "binance:ETH-USDT"


def test_a_dripping_exchange_fails_its_ingests_while_another_exchanges_market_ingests_every_tick(
        sqlite_url, start_daemon):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with FakeExchange() as fake:
        for m in SLOW:
            MarketFeed(fake, m, hours=600, held_back=0, source=(KRW_CSV, "2023-06-01T00:00:00"))
        MarketFeed(fake, HEALTHY, hours=600, held_back=0)
        fake.fail_next("drip", times=10_000, path_contains="/upbit/", every=0.5)
        # Four stuck markets and four ingest workers: without per-exchange capacity the healthy
        # market would wait for all of them.
        env = daemon_env(sqlite_url, fake, SLOW + [HEALTHY], ingest_cron="*/2 * * * * *",
                         http_timeout_seconds=1, ingest_workers=4)
        daemon = start_daemon(env)

        def runs(market, status):
            exchange, symbol = market.split(":")
            return query(engine, "SELECT started_at, finished_at, message FROM job_runs WHERE job='ingest' "
                                 "AND exchange=:ex AND symbol=:sym AND status=:st ORDER BY id",
                         ex=exchange, sym=symbol, st=status)

        failed = daemon.wait_for(lambda: runs(SLOW[0], "failed"), "the first dripping ingest to fail", timeout=60)
        assert "no complete answer within 2 s" in failed[0].message and "sends too slowly" in failed[0].message
        first_failure = as_utc(failed[0].finished_at)
        healthy = [as_utc(r.finished_at) for r in runs(HEALTHY, "ok")]
        # The dripping ingest took several ticks to fail; the healthy market ingested on them.
        assert sum(t < first_failure for t in healthy) >= 3, (healthy, first_failure)
        assert daemon.alive()
