"""Run `forecaster run` as a user does (a subprocess with FORECASTER_* variables) against the fake
exchange, with real candles re-timed to end in the real recent past.

The daemon uses the real clock, so the fake server follows it too (`now=None`) and "the clock
advances" by releasing further hours of the re-timed series, all of which have already closed in
real time: `MarketFeed.release(hours)`.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from core.grid import HOUR, last_closed_open_time
from tests.helpers.cli import FORECASTER
from tests.helpers.fake_exchange import KRW_CSV, USDT_CSV, FakeExchange, load_csv_slice, retime

# A model that trains in well under a second on a CPU, and a window small enough for it.
TINY_MODEL = {"lookback": 48, "patch": 4, "hidden_size": 8, "max_epochs": 2, "val_steps": 150, "shrink_grid": 5}
# A training that lasts: 100 epochs that early stopping never ends, 10-30 s here, long enough to cut
# a daemon's lock in the middle, short enough that a daemon which did not notice would finish and
# write; the LSTM (off by default) keeps a training under way for as long as a test needs one.
SLOW_MODEL = {**TINY_MODEL, "hidden_size": 64, "max_epochs": 100, "patience": 1000, "batch_size": 16, "learned": "lstm"}
SOURCES = {"bithumb:ETH-KRW": (KRW_CSV, "2023-06-01T00:00:00"), "binance:ETH-USDT": (USDT_CSV, "2023-06-01T00:00:00")}


class MarketFeed:
    """One market's re-timed series on the fake server; `held_back` newest hours not released yet.
    `source`: (CSV, first hour) to replay, for markets beyond SOURCES (more symbols, one series)."""

    def __init__(self, fake: FakeExchange, market: str, *, hours: int, held_back: int,
                 source: tuple | None = None) -> None:
        path, start = source or SOURCES[market]
        self.fake, self.market = fake, market
        self.series = retime(load_csv_slice(path, start, hours), last_closed_open_time(datetime.now(timezone.utc)))
        self.released = len(self.series) - held_back
        self.fake.set_candles(market, self.series[:self.released])

    def release(self, hours: int = 1) -> datetime:
        self.released = min(len(self.series), self.released + hours)
        self.fake.set_candles(self.market, self.series[:self.released])
        return self.newest

    @property
    def newest(self) -> datetime:
        return self.series[self.released - 1].open_time

    def served_since(self, since: datetime) -> list[datetime]:
        return [c.open_time for c in self.series[:self.released] if c.open_time > since]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_env(db_url: str, fake: FakeExchange, markets: list[str], **extra) -> dict[str, str]:
    env = {
        "FORECASTER_DATABASE_URL": db_url, "FORECASTER_MARKETS": ",".join(markets), "FORECASTER_DEVICE": "cpu",
        "FORECASTER_INGEST_CRON": "*/3 * * * * *", "FORECASTER_RETRAIN_CRON": "0 0 1 1 *",
        "FORECASTER_HTTP_PORT": str(free_port()), "FORECASTER_MODEL_OVERRIDES": json.dumps(TINY_MODEL),
        "FORECASTER_TRAIN_STEPS": "400", "FORECASTER_BACKFILL_DAYS": "20", "FORECASTER_MISFIRE_GRACE_SECONDS": "120",
        "FORECASTER_HEALTHZ_MAX_LAG_STEPS": "3", **fake.env(),
    }
    env.update({f"FORECASTER_{k.upper()}": str(v) for k, v in extra.items()})
    return env


class DaemonProcess:
    """`forecaster run` in a subprocess, its output in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTER_")}
        full_env.update(env)
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([FORECASTER, "run"], env=full_env, stdout=self._log, stderr=subprocess.STDOUT)
        self.port = int(env["FORECASTER_HTTP_PORT"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, predicate, what: str, timeout: float = 60, every: float = 0.3):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if not self.alive():
                raise AssertionError(f"daemon exited ({self.proc.returncode}) waiting for {what}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{self.log()[-3000:]}")
            time.sleep(every)

    def terminate(self, timeout: float = 30, sig: int = signal.SIGTERM) -> tuple[int, float]:
        """SIGTERM (or Ctrl-C's SIGINT); (exit status, seconds until exit)."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self._log.close()
        return rc, time.monotonic() - started

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no handler, no cleanup
        self.proc.wait(10)
        self._log.close()

    def close(self) -> None:
        if self.alive():
            self.kill()
        self._log.close()


@pytest.fixture
def start_daemon(tmp_path):
    """start_daemon(env, name) -> DaemonProcess; any still running at the end of the test is killed."""
    started: list[DaemonProcess] = []

    def start(env: dict[str, str], name: str = "daemon") -> DaemonProcess:
        started.append(DaemonProcess(env, tmp_path / f"{name}.log"))
        return started[-1]
    yield start
    for d in started:
        d.close()


def query(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def market_where(market: str) -> dict:
    exchange, symbol = market.split(":")
    return {"ex": exchange, "sym": symbol}


def newest_candle(engine, market: str):
    return scalar(engine, "SELECT max(open_time) FROM candles WHERE exchange=:ex AND symbol=:sym", **market_where(market))


def newest_live_origin(engine, market: str):
    return scalar(engine, "SELECT max(origin_time) FROM predictions WHERE kind='live' AND exchange=:ex AND symbol=:sym",
                  **market_where(market))


def as_utc(ts) -> datetime | None:
    """SQLite gives text or naive datetimes through raw SQL; Postgres aware ones."""
    if ts is None:
        return None
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def overlapping_runs(engine) -> list[tuple]:
    """Pairs of job runs of the same job and market that ran at the same time (skipped ones aside)."""
    rows = query(engine, "SELECT id, job, exchange, symbol, started_at, finished_at FROM job_runs "
                         "WHERE status IN ('ok', 'failed') AND finished_at IS NOT NULL ORDER BY started_at")
    by_key: dict[tuple, list] = {}
    clashes = []
    for r in rows:
        key = (r.job, r.exchange, r.symbol)
        start, end = as_utc(r.started_at), as_utc(r.finished_at)
        for other_id, other_start, other_end in by_key.get(key, []):
            if start < other_end and other_start < end:
                clashes.append((other_id, r.id, key))
        by_key.setdefault(key, []).append((r.id, start, end))
    return clashes


def hours_between(a: datetime, b: datetime) -> int:
    return int((b - a) / HOUR)


__all__ = ["MarketFeed", "DaemonProcess", "daemon_env", "free_port", "query", "scalar", "newest_candle",
           "newest_live_origin", "as_utc", "overlapping_runs", "TINY_MODEL", "SLOW_MODEL",
           "start_daemon"]
