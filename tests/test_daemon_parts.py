"""The daemon's pieces without a daemon process: locks, the health rule, metrics, the scheduler
listener, the model overrides setting."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.events import (EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent,
                                JobSubmissionEvent)

from daemon.locks import LocalJobLocks, LockLost
from daemon.metrics import Metrics
from daemon.pg_locks import PgJobLocks
from daemon.process_lock import DaemonRefused, ProcessLock
from daemon.scheduling import SchedulerEvents
from daemon.state import DaemonState
from db.engine import make_lock_engine
from exchanges.base import parse_market
from jobs.settings import SettingsError, load_settings

ETH_KRW, ETH_USDT = parse_market("bithumb:ETH-KRW"), parse_market("binance:ETH-USDT")


@pytest.mark.postgres
def test_postgres_row_locks_admit_one_worker_per_job_and_market(pg_url):
    from db.engine import make_engine
    from db.migrate import upgrade
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    a, b = PgJobLocks(make_lock_engine(pg_url)), PgJobLocks(make_lock_engine(pg_url))  # two engines: two daemons
    try:
        with a.hold("ingest", ETH_KRW) as first:
            assert first
            with b.hold("ingest", ETH_KRW) as second, b.hold("ingest", ETH_USDT) as other_market, \
                    b.hold("train", ETH_KRW) as other_job:
                assert not second and other_market and other_job
        with b.hold("ingest", ETH_KRW) as after_release:
            assert after_release

        released = threading.Event()

        def hold_briefly():
            with a.hold("predict", ETH_KRW):
                held.set()
                released.wait(5)
        held = threading.Event()
        t = threading.Thread(target=hold_briefly)
        t.start()
        held.wait(5)
        threading.Timer(0.5, released.set).start()
        with b.hold("predict", ETH_KRW, wait=5) as waited:  # a forecast is worth waiting for
            assert waited
        t.join()
    finally:
        a.close()
        b.close()


@pytest.mark.postgres
def test_a_lock_whose_connection_is_terminated_knows_it_is_lost(pg_url):
    import psycopg
    from db.engine import make_engine
    from db.migrate import upgrade
    from tests.helpers.postgres import PG_ADMIN_URL
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    a, b = PgJobLocks(make_lock_engine(pg_url)), PgJobLocks(make_lock_engine(pg_url))
    try:
        with a.hold("train", ETH_KRW) as held:
            assert held and held.lost() is None
            held.ensure()
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                (pid,) = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
                                       (f"forecaster % pid % train {ETH_KRW}",)).fetchone()
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with b.hold("train", ETH_KRW) as other:  # the server released the row with the connection
                assert other
            assert "database connection ended" in held.lost()
            with pytest.raises(LockLost, match="lost the train lock of bithumb:ETH-KRW"):
                held.ensure()
    finally:
        a.close()
        b.close()


def test_local_locks_admit_one_thread_per_job_and_market():
    locks = LocalJobLocks()
    with locks.hold("train", ETH_KRW) as first:
        assert first
        with locks.hold("train", ETH_KRW) as second, locks.hold("train", ETH_USDT) as other:
            assert not second and other
    with locks.hold("train", ETH_KRW) as again:
        assert again


def test_one_daemon_per_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'forecaster.db'}"
    with ProcessLock(url) as first:
        assert first.path.exists()
        with pytest.raises(DaemonRefused, match="already serves the SQLite database .*forecaster.db"):
            ProcessLock(url).acquire()
        ProcessLock(f"sqlite:///{tmp_path / 'other.db'}").acquire()  # another file is another store
    with ProcessLock(url):  # released on exit (and by the kernel if the process dies)
        pass
    assert ProcessLock("postgresql+psycopg://u@h/db").path is None


def test_health_rule_is_the_lag_of_every_market_while_the_scheduler_runs():
    now = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)  # last closed hour opens at 11:00
    state = DaemonState.for_markets([ETH_KRW, ETH_USDT], max_lag_hours=3)
    state.markets[ETH_KRW].newest_candle = datetime(2024, 5, 1, 8, tzinfo=timezone.utc)   # 3 h behind
    state.markets[ETH_USDT].newest_candle = datetime(2024, 5, 1, 11, tzinfo=timezone.utc)  # up to date
    healthy, body = state.health(now)
    assert not healthy and body["scheduler"] == "stopped"
    state.running = True
    healthy, body = state.health(now)
    assert healthy and body["status"] == "ok"
    assert body["markets"]["bithumb:ETH-KRW"] == {"ok": True, "interval": "1h", "newest_candle": "2024-05-01T08:00:00Z",
                                                  "lag_steps": 3, "lag_hours": 3.0, "newest_origin": None,
                                                  "model_run_id": None, "problems": []}
    state.markets[ETH_KRW].newest_candle -= timedelta(hours=1)
    healthy, body = state.health(now)
    assert not healthy and body["markets"]["bithumb:ETH-KRW"]["ok"] is False
    assert body["markets"]["binance:ETH-USDT"]["ok"] is True
    state.markets[ETH_KRW].newest_candle = None  # nothing stored (or the database never answered)
    assert state.health(now)[0] is False


def test_health_lag_counts_in_each_markets_own_candles():
    now = datetime(2024, 5, 3, 12, 30, tzinfo=timezone.utc)
    day, quarter = parse_market("upbit:ETH-KRW@1d"), parse_market("binance:ETH-USDT@15m")
    state = DaemonState.for_markets([day, quarter], max_lag_hours=3)
    state.running = True
    state.markets[day].newest_candle = datetime(2024, 5, 2, tzinfo=timezone.utc)  # yesterday: the last closed day
    state.markets[quarter].newest_candle = datetime(2024, 5, 3, 11, 30, tzinfo=timezone.utc)  # 3 quarters behind
    healthy, body = state.health(now)
    assert healthy
    assert body["markets"]["upbit:ETH-KRW@1d"]["lag_steps"] == 0
    assert body["markets"]["binance:ETH-USDT@15m"]["lag_steps"] == 3
    assert body["markets"]["binance:ETH-USDT@15m"]["lag_hours"] == 0.75
    state.markets[day].newest_candle = datetime(2024, 4, 28, tzinfo=timezone.utc)  # 4 closed days after it
    assert state.health(now)[1]["markets"]["upbit:ETH-KRW@1d"] == {**state.health(now)[1]["markets"]["upbit:ETH-KRW@1d"],
                                                                     "ok": False, "lag_steps": 4}


def test_metrics_live_in_a_private_registry():
    state = DaemonState.for_markets([ETH_KRW], max_lag_hours=3)
    state.markets[ETH_KRW].newest_candle = datetime.now(timezone.utc) - timedelta(hours=3)
    state.markets[ETH_KRW].model = {"id": 7, "finished_at": datetime.now(timezone.utc), "val_rmae": 0.97,
                                    "val_coverage": 0.81, "val_mae": 1.0, "val_naive_mae": 1.03}
    a, b = Metrics(state), Metrics(state)  # two daemons in one process would not clash
    a.job_done("ingest", ETH_KRW, "failed", 0.5)
    text = a.render().decode()
    assert 'forecaster_job_runs_total{job_name="ingest",market="bithumb:ETH-KRW",status="failed"} 1.0' in text
    assert 'forecaster_job_duration_seconds_count{job_name="ingest",market="bithumb:ETH-KRW"} 1.0' in text
    assert 'forecaster_model_val_rmae{market="bithumb:ETH-KRW"} 0.97' in text
    assert 'forecaster_model_run_id{market="bithumb:ETH-KRW"} 7.0' in text
    assert 'forecaster_last_candle_age_seconds{market="bithumb:ETH-KRW"}' in text
    assert "forecaster_job_runs_total{" not in b.render().decode()


def test_model_overrides_setting_is_checked_at_start(monkeypatch):
    from jobs.train import model_config
    monkeypatch.setenv("FORECASTER_MODEL_OVERRIDES", '{"hidden_size": 8, "max_epochs": 2}')
    monkeypatch.setenv("FORECASTER_HORIZON", "12")
    config = model_config(load_settings())
    assert (config.hidden_size, config.max_epochs, config.horizon, config.lookback) == (8, 2, 12, 168)
    for bad, reason in (('{"hidden": 8}', "unknown model setting"), ('{"horizon": 6}', "unknown model setting"),
                        ("[8]", "JSON object"), ("hidden=8", "not JSON"), ('{"lookback": 5}', "divide lookback")):
        monkeypatch.setenv("FORECASTER_MODEL_OVERRIDES", bad)
        with pytest.raises(SettingsError, match=f"^FORECASTER_MODEL_OVERRIDES: .*{reason}"):
            load_settings()


def test_scheduler_listener_logs_errors_misses_and_overruns_in_one_line(caplog):
    events = SchedulerEvents(DaemonState.for_markets([ETH_KRW], max_lag_hours=3), misfire_grace_seconds=600)
    when = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    with caplog.at_level(logging.INFO, logger="forecaster.daemon"):
        events(JobExecutionEvent(EVENT_JOB_MISSED, "ingest", "default", when))
        events(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "ingest-15m", "default", [when]))
        events(JobExecutionEvent(EVENT_JOB_ERROR, "retrain", "default", when, exception=KeyError("bug\nsecond line"),
                                 traceback="tb"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "job ingest missed its run of 2024-05-01T12:00:00Z by more than 600s" in lines[0]
    assert lines[1] == "job ingest-15m skipped its run of 2024-05-01T12:00:00Z: its previous run still runs"
    assert lines[2].startswith("job retrain failed unexpectedly: KeyError") and "\n" not in lines[2]


def test_a_run_belongs_to_the_latest_fire_time_of_its_schedule_however_late_it_starts():
    from jobs.cron import cron_trigger, latest_fire_time
    now = datetime(2026, 11, 28, 10, 47, 13, 500000, tzinfo=timezone.utc)
    at = lambda *a: datetime(*a, tzinfo=timezone.utc)  # noqa: E731
    assert latest_fire_time(cron_trigger("30 0 * * *"), now) == at(2026, 11, 28, 0, 30)
    assert latest_fire_time(cron_trigger("0 * * * *", delay_seconds=10), now) == at(2026, 11, 28, 10, 0, 10)
    assert latest_fire_time(cron_trigger("*/3 * * * * *"), now) == at(2026, 11, 28, 10, 47, 12)
    assert latest_fire_time(cron_trigger("0 0 29 2 *"), now) == at(2024, 2, 29)
    assert latest_fire_time(cron_trigger("30 0 * * *"), at(2026, 11, 28, 0, 30)) == at(2026, 11, 28, 0, 30)


def test_a_work_pool_runs_at_most_its_size_at_once_and_each_key_once_at_a_time():
    import time

    from daemon.pools import WorkPool
    pool = WorkPool("test", 2)
    release = threading.Event()
    ran: list[str] = []
    try:
        def work(key):
            def run():
                ran.append(key)
                release.wait(5)
            return run
        assert pool.submit("a", work("a"), priority=(1,))
        assert pool.submit("b", work("b"), priority=(1,))
        time.sleep(0.2)
        assert pool.submit("c", work("c"), priority=(1,)) and pool.submit("d", work("d"), priority=(0,))
        assert not pool.submit("a", work("a2")) and not pool.submit("d", work("d2"))  # running, queued
        assert pool.counts() == (2, 2)
        release.set()
        deadline = time.monotonic() + 5
        while pool.counts() != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(ran[:2]) == ["a", "b"] and ran[2] == "d"  # lower priority value first
        assert pool.peak_running == 2
    finally:
        pool.close()


def test_train_workers_is_auto_or_a_number():
    from daemon.training import cpu_count, resolve_train_workers
    assert resolve_train_workers("auto", "cpu") == cpu_count()  # one per core, one thread each
    assert resolve_train_workers(3, "cpu") == 3
    for bad in ("0", "65", "two", "1.5"):
        with pytest.raises(SettingsError, match="^FORECASTER_TRAIN_WORKERS: .* is not auto or a number"):
            load_settings(train_workers=bad)
