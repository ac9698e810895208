"""Many markets on one box and across daemons (issue 12): at most FORECASTER_TRAIN_WORKERS
trainings at a time, stalest model first; several daemons on one Postgres train each market once
per retrain schedule and split the work. Small and quick: tiny models, a few markets replaying one
real series under several symbols, schedules in seconds."""
from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta
from typing import NamedTuple

import pytest

from db.engine import make_engine
from db.migrate import upgrade
from tests.helpers.daemon_harness import (TINY_MODEL, MarketFeed, as_utc, daemon_env, free_port, newest_live_origin,
                                          query, start_daemon)
from tests.helpers.fake_exchange import KRW_CSV, FakeExchange

pytestmark = [pytest.mark.slow]
# Long enough (1-3 s here, with the LSTM, which is off by default) for trainings to overlap when allowed to.
MODEL = {**TINY_MODEL, "hidden_size": 24, "max_epochs": 12, "patience": 100, "learned": "lstm"}
RETRAIN_EVERY_S = 40


def krw_markets(n: int) -> list[str]:
    return [f"upbit:{name}-KRW" for name in ("ETH", "AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG")[:n]]


def feeds(fake: FakeExchange, markets: list[str]) -> dict[str, MarketFeed]:
    # One real series per symbol, each from another week, so the models differ.
    return {m: MarketFeed(fake, m, hours=610, held_back=0,
                          source=(KRW_CSV, f"2023-06-{1 + 3 * i:02d}T00:00:00")) for i, m in enumerate(markets)}


class Training(NamedTuple):
    id: int
    market: str
    status: str
    started_at: datetime
    finished_at: datetime | None


def trainings(engine) -> list[Training]:
    return [Training(r.id, r.market, r.status, as_utc(r.started_at), as_utc(r.finished_at)) for r in query(
        engine, "SELECT id, exchange || ':' || symbol AS market, status, started_at, finished_at FROM model_runs "
                "ORDER BY started_at")]


def first_models(runs: list[Training]) -> list[Training]:
    """Each market's earliest finished training."""
    first: dict[str, Training] = {}
    for r in sorted((r for r in runs if r.finished_at), key=lambda r: r.finished_at):
        first.setdefault(r.market, r)
    return list(first.values())


def newest_models_before(runs: list[Training], slot: datetime) -> list[Training]:
    """Each market's newest training finished before `slot`: the model a retrain at `slot` replaces."""
    newest: dict[str, Training] = {}
    for r in sorted((r for r in runs if r.finished_at and r.finished_at < slot), key=lambda r: r.finished_at):
        newest[r.market] = r
    return list(newest.values())


def most_at_once(runs) -> int:
    events = sorted([(r.started_at, 1) for r in runs] + [(r.finished_at, -1) for r in runs if r.finished_at])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def next_slot(after: datetime) -> datetime:
    """The next fire time of the retrain schedule `*/RETRAIN_EVERY_S` seconds after `after`."""
    t = after.replace(microsecond=0) + timedelta(seconds=1)
    while t.second % RETRAIN_EVERY_S:
        t += timedelta(seconds=1)
    return t


def env_for(url, fake, markets, **extra):
    return daemon_env(url, fake, markets, model_overrides=json.dumps(MODEL), retrain_cron=f"*/{RETRAIN_EVERY_S} * * * * *",
                      ingest_cron="*/5 * * * * *", **extra)


def test_one_daemon_trains_at_most_its_workers_at_once_stalest_first(sqlite_url, start_daemon):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    markets = krw_markets(5)
    with FakeExchange() as fake:
        fed = feeds(fake, markets)
        daemon = start_daemon(env_for(sqlite_url, fake, markets, train_workers=2))
        daemon.wait_for(lambda: all(as_utc(newest_live_origin(engine, m)) == fed[m].newest for m in markets),
                        "every market forecasting", timeout=120)
        # The first model of each market. On a busy machine the catch-up can outlast a schedule
        # slot, so a market may already have been retrained: that retrain is not its first model.
        first = first_models(trainings(engine))
        caught_up = max(r.finished_at for r in first)
        slot = next_slot(caught_up)
        daemon.wait_for(lambda: len([r for r in trainings(engine) if r.started_at >= slot and r.finished_at])
                        >= len(markets), "one retrain of every market", timeout=120)
        metrics = daemon.get("/metrics").text
        rc, _ = daemon.terminate()
    runs = trainings(engine)
    retrain = [r for r in runs if slot <= r.started_at < next_slot(slot)]
    assert rc == 0 and "Traceback" not in daemon.log()
    # Every market got its first model once, and was retrained once for the schedule.
    assert sorted(r.market for r in first) == sorted(markets), first
    assert sorted(r.market for r in retrain) == sorted(markets), retrain
    # Never more than 2 trainings at once, and 2 did run side by side.
    assert most_at_once(runs) <= 2
    assert 'forecaster_pool_running_peak{pool="train"} 2.0' in metrics
    # Stalest model first: the retrains began in the order the models they replace were finished.
    by_age = [r.market for r in sorted(newest_models_before(runs, slot), key=lambda r: r.finished_at)]
    assert {r.market for r in retrain[:2]} == set(by_age[:2]), (retrain, by_age)
    engine.dispose()


@pytest.mark.postgres
def test_two_daemons_train_each_market_once_per_schedule_and_split_the_work(pg_url, start_daemon):
    engine = make_engine(pg_url)
    upgrade(engine)
    markets = krw_markets(6)
    with FakeExchange() as fake:
        fed = feeds(fake, markets)
        env = env_for(pg_url, fake, markets, train_workers=1)
        a = start_daemon(env, "a")
        b = start_daemon({**env, "FORECASTER_HTTP_PORT": str(free_port())}, "b")
        a.wait_for(lambda: all(as_utc(newest_live_origin(engine, m)) == fed[m].newest for m in markets),
                   "every market forecasting", timeout=150)
        caught_up = max(r.finished_at for r in first_models(trainings(engine)))
        slot = next_slot(caught_up)
        a.wait_for(lambda: len([r for r in trainings(engine) if r.started_at >= slot and r.finished_at])
                   >= len(markets), "one retrain of every market", timeout=150)
        done_by = query(engine, "SELECT exchange || ':' || symbol AS market, done_by FROM job_locks "
                                "WHERE job = 'train' AND done_for = :slot", slot=slot)
        rcs = [a.terminate()[0], b.terminate()[0]]
    assert rcs == [0, 0]
    runs = trainings(engine)
    # Catch-up and one schedule: each market got its first model, then was retrained once for the schedule.
    first = first_models(runs)
    retrain = [r for r in runs if slot <= r.started_at < next_slot(slot)]
    assert sorted(r.market for r in first) == sorted(markets)
    assert sorted(r.market for r in retrain) == sorted(markets)
    # One training at a time in each daemon, two in all; both daemons did a fair part of the schedule.
    assert most_at_once(runs) <= 2
    host = socket.gethostname()
    share = {d: sum(1 for r in done_by if r.done_by == f"forecaster {host} pid {d.proc.pid}") for d in (a, b)}
    assert sum(share.values()) == len(markets) and min(share.values()) >= 2, share
    for d in (a, b):
        assert "Traceback" not in d.log()
    engine.dispose()
