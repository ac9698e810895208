"""The daemon's decisions, in-process on a SQLite file with a clock moved by hand and fake jobs (the
real scheduler, locks, pools, training workers and cycles; ingest, train and predict replaced by
fakes that write what the real ones write): which market trains next, what is skipped, what a lost
lock does, what a failed ingest says, how a retrain backs off, and the catch-up at start.
The real `forecaster run` as a user starts it is in tests/test_daemon*.py (subprocesses)."""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError

from daemon.daemon import Daemon
from daemon.locks import LocalJobLocks
from daemon.use_cases import UseCases
from db.candles import newest_open_time, write_candles
from db.engine import make_engine, make_session_factory
from db.job_runs import start_job_run
from db.migrate import upgrade
from db.models import ModelRun, Prediction
from db.model_runs import promote, promoted_run, record_failed, record_trained, start_model_run
from db.predictions import write_predictions
from core.grid import last_closed_open_time
from core.records import TrainingMetrics
from exchanges.base import ExchangeError, parse_market
from exchanges.registry import grid_of
from forecaster.errors import TrainingCancelled
from jobs.bootstrap import Services
from jobs.recording import recorded
from jobs.settings import load_settings

NOW = datetime(2026, 11, 28, 12, 0, 10, tzinfo=timezone.utc)  # 10 s after the 11:00 candle closed
RETRAIN_SLOT = datetime(2026, 11, 28, 0, 30, tzinfo=timezone.utc)  # the default retrain cron's latest fire
A, B, C, D = (parse_market(f"upbit:{s}-KRW") for s in ("AAA", "BBB", "CCC", "DDD"))


class FakeClock:
    """Wall time that stands still unless moved; waits return at once and are remembered."""

    def __init__(self, now: datetime) -> None:
        self.wall, self.mono, self.waits = now, 1000.0, []

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def wait(self, event: threading.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.mono += seconds
        return event.is_set()


def seed_candles(sessions, market, newest: datetime, count: int = 48) -> None:
    times = pd.DatetimeIndex([newest - i * market.period.step for i in reversed(range(count))], name="open_time")
    frame = pd.DataFrame({"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "volume": 1.0}, index=times)
    with sessions() as s, s.begin():
        write_candles(frame, session=s, source="api", market=market)


def seed_model(sessions, market, finished_at: datetime | None = None) -> int:
    """A promoted model of `market` (finished at `finished_at`, or now)."""
    with sessions() as s, s.begin():
        run_id = start_model_run(session=s, device="cpu", config={}, train_start=None, train_end=None, market=market)
        record_trained(session=s, run_id=run_id, metrics=TrainingMetrics(val_rmae=0.9), weights=b"w", status="trained")
        promote(session=s, run_id=run_id, market=market)
        if finished_at is not None:
            s.execute(update(ModelRun).where(ModelRun.id == run_id).values(finished_at=finished_at))
    return run_id


def seed_forecast(sessions, market, origin: datetime) -> None:
    with sessions() as s, s.begin():
        model = promoted_run(session=s, market=market)
        frame = pd.DataFrame({"origin_time": [origin], "target_time": [origin + market.period.step], "horizon": [1],
                              "yhat": [100.0], "yhat_lower": [99.0], "yhat_upper": [101.0]})
        write_predictions(frame, session=s, kind="live", model_run_id=model.id, market=market)


class FakeJobs:
    """Ingest, train and predict as the daemon sees them: each records its `job_runs` row and writes
    what the real one writes (candles up to the clock's last closed one, a promoted model, a live
    forecast from the newest candle), fast. Hooks let a test hold a job, fail it or cut its lock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.calls, self.failing = clock, [], {}
        self.hold: dict[tuple, threading.Event] = {}  # (job, market) -> released when set
        self.on_epoch = lambda market, epoch: None
        self.running, self.peak, self._guard = 0, 0, threading.Lock()

    def use_cases(self) -> UseCases:
        return UseCases(self.ingest, self.train, self.predict)

    def _enter(self, job, market) -> None:
        with self._guard:
            self.calls.append((job, market))
            self.running += 1
            self.peak = max(self.peak, self.running)
        if (job, market) in self.hold:
            assert self.hold[(job, market)].wait(10), f"{job} {market} held too long"
        if (job, market) in self.failing:
            raise self.failing[(job, market)]

    def _leave(self) -> None:
        with self._guard:
            self.running -= 1

    def ingest(self, services, market, *, before_write):
        with recorded(services.sessions, "ingest", market) as record:
            try:
                self._enter("ingest", market)
                before_write()
                seed_candles(services.sessions, market, last_closed_open_time(self.clock.now(), grid_of(market)))
                record.rows = 48
            finally:
                self._leave()

    def train(self, services, market, *, stop, before_write):
        with recorded(services.sessions, "train", market):
            with services.sessions() as s, s.begin():
                run_id = start_model_run(session=s, device="cpu", config={}, train_start=None, train_end=None,
                                         market=market)
            try:
                self._enter("train", market)
                for epoch in range(3):
                    self.on_epoch(market, epoch)
                    if stop.is_set():
                        before_write()  # LockLost when that is why
                        raise TrainingCancelled("stopped")
                before_write()
            except Exception as exc:
                with services.sessions() as s, s.begin():
                    record_failed(session=s, run_id=run_id, error=str(exc))
                raise
            finally:
                self._leave()
            with services.sessions() as s, s.begin():
                record_trained(session=s, run_id=run_id, metrics=TrainingMetrics(val_rmae=0.9), weights=b"w", status="trained")
                promote(session=s, run_id=run_id, market=market)
            return run_id

    def predict(self, services, market, *, before_write):
        with recorded(services.sessions, "predict", market):
            try:
                self._enter("predict", market)
                before_write()
                with services.sessions() as s:
                    newest = newest_open_time(session=s, market=market)
                seed_forecast(services.sessions, market, newest)
            finally:
                self._leave()

    def trained(self) -> list:
        return [m for job, m in self.calls if job == "train"]


def _last_closed_hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


class CuttableLocks(LocalJobLocks):
    """Thread locks a test can take away from their holder (as a Postgres restart ends a row lock),
    and whose claims can fail as a database that went away does."""

    def __init__(self) -> None:
        super().__init__()
        self.cut: dict[tuple, str] = {}
        self.claim_failures = 0

    def _held(self, job, market):
        held = super()._held(job, market)
        held._check = lambda: self.cut.get((job, market))  # what PgJobLocks asks its connection
        return held

    def claim(self, job, markets, slot):
        if self.claim_failures:
            self.claim_failures -= 1
            raise OperationalError("SELECT ... FOR UPDATE SKIP LOCKED", {}, Exception("server closed the connection"))
        return super().claim(job, markets, slot)


@pytest.fixture
def world(tmp_path):
    """(sessions, make_daemon(markets, **options)); every daemon made is stopped at the end."""
    url = f"sqlite:///{tmp_path / 'forecaster.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    made = []

    def make_daemon(markets, *, train_workers=1, clock=None, locks=None, **settings):
        clock = clock or FakeClock(NOW)
        jobs = FakeJobs(clock)
        services = Services(load_settings(database_url=url, markets=",".join(map(str, markets)), device="cpu",
                                          **settings), engine, sessions)
        daemon = Daemon(services, train_workers=train_workers, clock=clock, jobs=jobs.use_cases(), locks=locks)
        made.append(daemon)
        return daemon, jobs
    yield sessions, make_daemon
    for daemon in made:
        daemon.stop.set()
        daemon.close_pools()
    engine.dispose()


def wait_until(predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return value


def rows(sessions, sql: str, **params) -> list:
    with sessions() as s:
        return list(s.execute(text(sql), params))


def newest_origins(sessions) -> dict[str, datetime]:
    with sessions() as s:
        return dict(s.execute(select(Prediction.symbol, Prediction.origin_time).order_by(Prediction.origin_time)).all())


def metric(daemon, line: str) -> bool:
    return line in daemon.metrics.render().decode()


def test_the_retrain_takes_markets_without_a_model_then_the_stalest_model_first(world):
    sessions, make_daemon = world
    for market, age_days in ((A, 5), (B, 1), (C, 3)):
        seed_candles(sessions, market, _last_closed_hour(NOW))
        seed_model(sessions, market, NOW - timedelta(days=age_days))
    seed_candles(sessions, D, _last_closed_hour(NOW))  # no model at all
    daemon, jobs = make_daemon([A, B, C, D])
    daemon.start_up()
    daemon.retrain_round()
    daemon.training.start()
    wait_until(lambda: len(jobs.trained()) == 4, "every market retrained")
    assert jobs.trained() == [D, A, C, B]
    # Once per schedule: the same slot again trains nothing; each new model got its forecast.
    daemon.retrain_round()
    time.sleep(0.2)
    assert len(jobs.trained()) == 4
    wait_until(lambda: newest_origins(sessions) == {m.symbol: _last_closed_hour(NOW) for m in (A, B, C, D)},
               "a forecast from each new model")


def test_at_most_train_workers_trainings_run_at_once(world):
    sessions, make_daemon = world
    markets = [A, B, C, D]
    for age, market in enumerate(markets):
        seed_candles(sessions, market, _last_closed_hour(NOW))
        seed_model(sessions, market, NOW - timedelta(days=10 - age))
    daemon, jobs = make_daemon(markets, train_workers=2)
    both_started = threading.Event()
    jobs.on_epoch = lambda market, epoch: both_started.wait(5) if jobs.running < 2 else both_started.set()
    daemon.start_up()
    daemon.retrain_round()
    daemon.training.start()
    wait_until(lambda: len(jobs.trained()) == 4, "every market retrained")
    assert jobs.peak == 2
    assert set(jobs.trained()[:2]) == {A, B}  # the two stalest went first, side by side
    assert metric(daemon, 'forecaster_pool_running_peak{pool="train"} 2.0')


def test_a_job_whose_lock_another_worker_holds_is_skipped_counted_and_not_written(world, caplog):
    sessions, make_daemon = world
    seed_candles(sessions, A, _last_closed_hour(NOW))
    daemon, jobs = make_daemon([A])
    with caplog.at_level(logging.INFO, logger="forecaster.daemon"):
        with daemon.locks.hold("ingest", A), daemon.locks.hold("train", A):
            assert daemon.cycles.ingest_cycle(A) == []
            assert daemon.cycles.retrain_cycle(A) == []
    assert jobs.calls == []
    assert rows(sessions, "SELECT * FROM job_runs") == []
    assert "job=ingest market=upbit:AAA-KRW status=skipped: another worker holds this job's lock" in caplog.text
    assert metric(daemon, 'forecaster_job_runs_total{job_name="train",market="upbit:AAA-KRW",status="skipped"} 1.0')


def test_an_ingest_round_skips_a_market_still_ingesting_and_a_day_market_with_nothing_new(world, caplog):
    sessions, make_daemon = world
    day = parse_market("upbit:ETH-KRW@1d")
    seed_candles(sessions, day, datetime(2026, 11, 27, tzinfo=timezone.utc))  # yesterday: the last closed day
    daemon, jobs = make_daemon([A, day])
    jobs.hold[("ingest", A)] = release = threading.Event()
    daemon.start_up()
    (hourly, _retrain) = daemon.table
    with caplog.at_level(logging.INFO, logger="forecaster.daemon"):
        daemon.ingest_round(hourly)
        wait_until(lambda: jobs.calls, "the first ingest under way")
        daemon.ingest_round(hourly)  # the next tick, while the first still runs
    release.set()
    wait_until(lambda: rows(sessions, "SELECT * FROM job_runs WHERE job = 'ingest' AND status = 'ok'"), "the ingest")
    assert jobs.calls == [("ingest", A)]  # once, and the day market not at all
    assert "ingest upbit:AAA-KRW: the previous ingest of this market is still queued or running" in caplog.text


def test_a_training_that_loses_its_lock_stops_without_writing_and_leaves_its_slot_to_others(world, caplog):
    sessions, make_daemon = world
    seed_candles(sessions, A, _last_closed_hour(NOW))
    old = seed_model(sessions, A, NOW - timedelta(days=2))
    locks = CuttableLocks()
    daemon, jobs = make_daemon([A], locks=locks)
    jobs.on_epoch = lambda market, epoch: locks.cut.update({("train", A): "its connection ended"}) if epoch == 1 else None
    with locks.claim("train", [A], RETRAIN_SLOT) as held:
        assert daemon.cycles.retrain_cycle(A, lock=held, slot=RETRAIN_SLOT) == ["train"]
    (run,) = rows(sessions, "SELECT status, error FROM model_runs WHERE id != :old", old=old)
    assert run.status == "failed" and "lost the train lock of upbit:AAA-KRW" in run.error
    (job,) = rows(sessions, "SELECT status, message FROM job_runs WHERE job = 'train'")
    assert job.status == "failed" and "another worker may run it now" in job.message
    assert rows(sessions, "SELECT id FROM model_runs WHERE status = 'promoted'") == [(old,)]
    assert locks.done_for("train", [A]) == {A: None}  # not done: another worker may train it for the slot
    assert ("predict", A) not in jobs.calls


def test_a_failed_ingest_says_when_the_next_one_is_by_the_markets_own_schedule(world, caplog):
    sessions, make_daemon = world
    quarter = parse_market("binance:ETH-USDT@15m")
    daemon, jobs = make_daemon([quarter], clock=FakeClock(NOW.replace(minute=7)))
    jobs.failing[("ingest", quarter)] = ExchangeError("binance: HTTP 500 after 4 tries")
    with caplog.at_level(logging.INFO):
        assert daemon.cycles.ingest_cycle(quarter) == ["ingest"]
    assert "tries again at 2026-11-28 12:15:10Z" in caplog.text
    assert "`forecaster import-csv PATH --market binance:ETH-USDT@15m`" in caplog.text
    (run,) = rows(sessions, "SELECT status, message FROM job_runs")
    assert run.status == "failed" and "HTTP 500" in run.message
    assert metric(daemon, 'forecaster_job_runs_total{job_name="ingest",market="binance:ETH-USDT@15m",status="failed"} 1.0')


def test_a_retrain_the_database_interrupts_backs_off_doubling_then_finishes_its_slot(world, caplog):
    sessions, make_daemon = world
    seed_candles(sessions, A, _last_closed_hour(NOW))
    seed_model(sessions, A, NOW - timedelta(days=2))
    locks, clock = CuttableLocks(), FakeClock(NOW)
    locks.claim_failures = 3
    daemon, jobs = make_daemon([A], locks=locks, clock=clock)
    daemon.start_up()
    daemon.training.start()
    with caplog.at_level(logging.WARNING, logger="forecaster.daemon"):
        daemon.retrain_round()
        wait_until(lambda: jobs.trained() == [A], "the retrain once the database is back")
    assert clock.waits == [1.0, 2.0, 4.0]
    assert "retrain of the 2026-11-28T00:30:00Z schedule paused: database: server closed the connection; " \
           "claiming the markets left again in 1s" in caplog.text


def test_at_start_the_daemon_catches_up_from_what_the_data_says(world):
    sessions, make_daemon = world
    empty, no_model, stale_forecast, missed_retrain = A, B, C, D
    newest = _last_closed_hour(NOW)
    for market in (no_model, stale_forecast, missed_retrain):
        seed_candles(sessions, market, newest)
    seed_model(sessions, stale_forecast, RETRAIN_SLOT + timedelta(hours=1))
    seed_forecast(sessions, stale_forecast, newest - timedelta(hours=1))
    seed_model(sessions, missed_retrain, RETRAIN_SLOT - timedelta(days=1))  # down when the retrain fired
    seed_forecast(sessions, missed_retrain, newest)
    with sessions() as s, s.begin():  # what a killed daemon left behind
        start_job_run(session=s, job="ingest", market=stale_forecast)
        start_model_run(session=s, device="cpu", config={}, train_start=None, train_end=None, market=no_model)
    daemon, jobs = make_daemon([empty, no_model, stale_forecast, missed_retrain])
    daemon.start_up()
    assert rows(sessions, "SELECT status FROM job_runs") == [("failed",)]
    assert rows(sessions, "SELECT count(*) FROM model_runs WHERE status = 'training'") == [(0,)]
    daemon.training.start()
    for schedule in daemon.table:  # what the scheduler runs at once
        if schedule.job == "ingest":
            daemon.ingest_round(schedule)
    wait_until(lambda: newest_origins(sessions) == {m.symbol: newest for m in (A, B, C, D)},
               "a forecast from the newest candle of every market")
    # The empty store back-filled, the markets without a model got one, the one whose retrain it
    # missed was retrained, the one with a fresh model only forecast.
    assert ("ingest", empty) in jobs.calls
    assert sorted(map(str, jobs.trained())) == sorted(map(str, (empty, no_model, missed_retrain)))
    abandoned = rows(sessions, "SELECT message FROM job_runs WHERE status = 'failed'")
    assert [r.message for r in abandoned] == ["abandoned: the process running it stopped (found at daemon start)"]


@pytest.mark.postgres
def test_two_daemons_on_one_postgres_train_each_market_once_per_schedule_and_share_the_work(pg_url):
    engine = make_engine(pg_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    markets = [parse_market(f"upbit:{s}-KRW") for s in ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")]
    for age, market in enumerate(markets):
        seed_candles(sessions, market, _last_closed_hour(NOW))
        seed_model(sessions, market, NOW - timedelta(days=10 - age))
    both_training = threading.Barrier(2, timeout=10)  # each daemon's first training waits for the other's
    daemons = []
    for _ in range(2):
        clock = FakeClock(NOW)
        jobs = FakeJobs(clock)
        jobs.on_epoch = lambda market, epoch, jobs=jobs: both_training.wait() if len(jobs.trained()) == 1 and epoch == 0 \
            else None
        services = Services(load_settings(database_url=pg_url, markets=",".join(map(str, markets)), device="cpu"),
                            engine, sessions)
        daemons.append((Daemon(services, clock=clock, jobs=jobs.use_cases()), jobs))
    try:
        for daemon, _ in daemons:
            daemon.start_up()
            daemon.retrain_round()
        for daemon, _ in daemons:
            daemon.training.start()
        wait_until(lambda: sum(len(jobs.trained()) for _, jobs in daemons) == len(markets), "the schedule's work")
        time.sleep(0.3)  # nothing more comes
        trained = [m for _, jobs in daemons for m in jobs.trained()]
        assert sorted(map(str, trained)) == sorted(map(str, markets))  # each market once, by one of them
        assert all(jobs.trained() for _, jobs in daemons)
        done = rows(sessions, "SELECT count(*) FROM job_locks WHERE job = 'train' AND done_for IS NOT NULL")
        assert done == [(len(markets),)]
    finally:
        for daemon, _ in daemons:
            daemon.stop.set()
            daemon.close_pools()
            daemon.locks.close()
            daemon.services.close()
