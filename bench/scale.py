"""Many markets, one or two daemons on one Postgres: the figures of docs/scaling.md (issue 12).

N markets: the six real Upbit series of ../shared/data, then more symbols replaying them (each from
another week), re-timed so that their newest candle is the last closed hour, served by
tests/helpers/fake_exchange.py on loopback. An empty Postgres database is created (and dropped at
the end), migrated, and D daemons (`forecaster run` subprocesses, the default model unless --model
says otherwise) serve all N markets:

1. catch-up from the empty store: wall time until every market has a live forecast from its newest
   candle; trainings at once per daemon (its /metrics peak) and overall (model_runs intervals);
2. the daemons are restarted with a retrain schedule that fires once, at T0: wall time from T0 until
   every market has a model trained for it, trainings per market for that schedule (must be 1),
   each daemon's share (job_locks.done_by); and, while the retrain runs (--close-after s after T0),
   the next hour closes, with an ingest 10 s later (the daemon's hourly ingest runs 10 s after the
   hour): the delay from that close to each market's new forecast;
3. the peak RSS of each daemon (VmHWM) and its most Postgres connections (sampled each second) in
   each phase, and where the time went.

    .venv/bin/python bench/scale.py --markets 8 --daemons 1 [--workers auto] [--model '{...}']
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import text  # noqa: E402

from core.grid import HOUR, last_closed_open_time  # noqa: E402
from db.engine import make_engine  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from tests.helpers.fake_exchange import FakeExchange, load_csv_slice, retime  # noqa: E402

DATA = Path(os.environ.get("FORECASTER_SHARED_DATA", REPO.parent / "shared" / "data"))
BASES = ["ETH", "BTC", "XRP", "SOL", "DOGE", "LINK"]
HOURS = 4500  # served per market: the 180-day back-fill and a training window, and some
PG_ADMIN = os.environ.get("FORECASTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
FORECASTER = str(Path(sys.executable).parent / "forecaster")


def market_series(n: int, newest: datetime) -> dict[str, list]:
    """market -> candles: ETH..LINK first, then ETH1, BTC1, ... replaying them from another week."""
    out = {}
    for i in range(n):
        base, k = BASES[i % 6], i // 6
        start = datetime(2022, 2, 1, tzinfo=timezone.utc) + timedelta(days=7 * k)
        candles = load_csv_slice(DATA / f"upbit_{base}KRW_1h_dev.csv", start, HOURS)
        out[f"upbit:{base}{k or ''}-KRW"] = retime(candles, newest)
    return out


class Daemon:
    def __init__(self, name: str, env: dict, logdir: Path) -> None:
        self.name, self.port = name, int(env["FORECASTER_HTTP_PORT"])
        self.log_path = logdir / f"{name}.log"
        full = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTER_")}
        full.update(env)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([FORECASTER, "run"], env=full, stdout=self._log, stderr=subprocess.STDOUT)

    def owner(self) -> str:
        return f"forecaster {socket.gethostname()} pid {self.proc.pid}"

    def connections(self, engine) -> int:
        """Postgres connections of this daemon now (pooled and lock connections are named after it)."""
        return scalar(engine, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE :n",
                      n=self.owner() + "%")

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def train_peak(self) -> int:
        text_ = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10).text
        m = re.search(r'forecaster_pool_running_peak\{pool="train"\} ([\d.]+)', text_)
        return int(float(m.group(1))) if m else -1

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


PEAK_CONNECTIONS: dict[str, int] = {}


def wait_until(predicate, what: str, timeout: float, daemons: list[Daemon], every: float = 1.0, engine=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if engine is not None:  # sample each daemon's connections meanwhile
            for d in daemons:
                PEAK_CONNECTIONS[d.name] = max(PEAK_CONNECTIONS.get(d.name, 0), d.connections(engine))
        if value:
            return value
        for d in daemons:
            if d.proc.poll() is not None:
                raise SystemExit(f"{d.name} exited ({d.proc.returncode}) waiting for {what}; see {d.log_path}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def cron_at(t: datetime) -> str:
    """A 6-field crontab that fires once, at `t` (to the second)."""
    return f"{t.second} {t.minute} {t.hour} {t.day} {t.month} *"


def run(args) -> dict:
    n, daemons_n = args.markets, args.daemons
    # The series end at the last closed hour, which is held back until phase 2: every hour served is
    # closed in real time, so the daemons take it (the exchange would serve a later one as open).
    last = last_closed_open_time(datetime.now(timezone.utc))
    series = market_series(n, last)
    newest = last - HOUR
    markets = list(series)
    name = f"forecaster_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    engine = make_engine(url)
    logdir = Path(tempfile.mkdtemp(prefix="forecaster-scale-"))
    result: dict = {"markets": n, "daemons": daemons_n, "workers": args.workers, "model": args.model or "default",
                    "cpus": os.cpu_count(), "logs": str(logdir)}
    try:
        upgrade(engine)
        with FakeExchange(now=None) as fake:
            for m, candles in series.items():
                fake.set_candles(m, candles[:-1])
            base_env = {"FORECASTER_DATABASE_URL": url, "FORECASTER_MARKETS": ",".join(markets),
                        "FORECASTER_DEVICE": "cpu", "FORECASTER_TRAIN_WORKERS": args.workers,
                        "FORECASTER_LOG_LEVEL": "INFO", "FORECASTER_HEALTHZ_MAX_LAG_STEPS": "3",
                        **({"FORECASTER_MODEL_OVERRIDES": args.model} if args.model else {}), **fake.env()}

            # 1. catch-up from the empty store
            # Ingest every 30 s: a market whose first model the gate rejected is trained again after it.
            env = {**base_env, "FORECASTER_INGEST_CRON": "*/30 * * * * *", "FORECASTER_RETRAIN_CRON": "0 0 1 1 *"}
            started = time.monotonic()
            started_at = datetime.now(timezone.utc)
            ds = [Daemon(f"catchup-{i}", {**env, "FORECASTER_HTTP_PORT": str(free_port())}, logdir)
                  for i in range(daemons_n)]
            forecasting = "SELECT count(DISTINCT exchange || symbol) FROM predictions WHERE kind = 'live' AND origin_time = :t"
            wait_until(lambda: scalar(engine, forecasting, t=newest) == n, "every market forecasting",
                       args.timeout, ds, engine=engine)
            catchup_s = time.monotonic() - started
            result["catchup"] = {
                "every_market_forecasting_s": round(catchup_s, 1),
                "train_peak_per_daemon": [d.train_peak() for d in ds],
                "peak_rss_mb_per_daemon": [round(d.peak_rss_mb()) for d in ds],
                "peak_db_connections_per_daemon": [PEAK_CONNECTIONS.get(d.name) for d in ds],
                **_where_time_went(engine, started_at),
            }
            for d in ds:
                d.stop()

            # 2. one retrain of every market at T0; the next hour closes while it runs, and the ingest
            # fires 10 s after the close, as the daemon's hourly ingest does after each hour.
            t0 = (datetime.now(timezone.utc) + timedelta(seconds=25)).replace(microsecond=0)
            release = t0 + timedelta(seconds=args.close_after)
            env = {**base_env, "FORECASTER_RETRAIN_CRON": cron_at(t0),
                   "FORECASTER_INGEST_CRON": cron_at(release + timedelta(seconds=10))}
            ds = [Daemon(f"retrain-{i}", {**env, "FORECASTER_HTTP_PORT": str(free_port())}, logdir)
                  for i in range(daemons_n)]
            wait_until(lambda: datetime.now(timezone.utc) >= release, "the next close", 300, ds, every=0.05)
            for m, candles in series.items():
                fake.set_candles(m, candles)
            retrained_sql = "SELECT count(DISTINCT exchange || symbol) FROM model_runs WHERE started_at >= :t0 " \
                            "AND status <> 'training'"
            new_forecasts = "SELECT count(DISTINCT exchange || symbol) FROM predictions WHERE kind = 'live' " \
                            "AND origin_time = :t"
            wait_until(lambda: scalar(engine, retrained_sql, t0=t0) == n and
                       scalar(engine, new_forecasts, t=newest + HOUR) == n,
                       "every market retrained and forecast from the new hour", args.timeout, ds, engine=engine)
            retrain_done = max(r[0] for r in rows(engine, "SELECT finished_at FROM model_runs WHERE started_at >= :t0",
                                                  t0=t0))
            per_market = rows(engine, "SELECT exchange || ':' || symbol, count(*) FROM model_runs "
                                      "WHERE started_at >= :t0 GROUP BY 1", t0=t0)
            shares = rows(engine, "SELECT done_by, count(*) FROM job_locks WHERE job = 'train' AND done_for = :t0 "
                                  "GROUP BY done_by", t0=t0)
            # The first forecast from the new hour of each market, from its predict job run: a retrain
            # that promotes a model afterwards writes that origin's rows again (they supersede it).
            delays = [(r[0] - release).total_seconds() for r in rows(
                engine, "SELECT min(finished_at) FROM job_runs WHERE job = 'predict' AND status = 'ok' "
                        "AND message LIKE :origin GROUP BY exchange, symbol",
                origin=f"origin {newest + HOUR:%Y-%m-%dT%H:%M}Z%")]
            running_at_close = sum(1 for r in rows(engine, "SELECT started_at, finished_at FROM model_runs "
                                                           "WHERE started_at >= :t0", t0=t0)
                                   if r[0] <= release and (r[1] is None or r[1] >= release))
            result["retrain"] = {
                "full_retrain_s": round((retrain_done - t0).total_seconds(), 1),
                "trainings_per_market": sorted({c for _, c in per_market}),
                "share_per_daemon": {d.name: next((c for by, c in shares if by == d.owner()), 0) for d in ds},
                "train_peak_per_daemon": [d.train_peak() for d in ds],
                "peak_rss_mb_per_daemon": [round(d.peak_rss_mb()) for d in ds],
                "peak_db_connections_per_daemon": [PEAK_CONNECTIONS.get(d.name) for d in ds],
                "forecast_delay_after_close_s": {"min": round(min(delays), 1), "median": round(statistics.median(delays), 1),
                                                 "max": round(max(delays), 1)},
                "t0": t0.isoformat(), "close_at": release.isoformat(), "close_at_s_after_t0": args.close_after,
                "markets_with_a_first_forecast_from_the_new_hour": len(delays),
                "trainings_running_at_close": running_at_close,
                **_where_time_went(engine, t0),
            }
            overall = [(r[0], r[1]) for r in rows(engine, "SELECT started_at, finished_at FROM model_runs "
                                                          "WHERE finished_at IS NOT NULL")]
            result["most_trainings_at_once_all_daemons"] = most_at_once(overall)
            for d in ds:
                d.stop()
            result["tracebacks_in_logs"] = sum(p.read_text(errors="replace").count("Traceback")
                                               for p in logdir.glob("*.log"))
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return result


def _where_time_went(engine, since: datetime) -> dict:
    """Seconds spent in each job (sum over markets) since `since`, and the mean training."""
    jobs = rows(engine, "SELECT job, count(*), sum(EXTRACT(EPOCH FROM finished_at - started_at)) FROM job_runs "
                        "WHERE started_at >= :t AND status = 'ok' GROUP BY job", t=since)
    fits = rows(engine, "SELECT avg(train_seconds), max(train_seconds) FROM model_runs WHERE started_at >= :t "
                        "AND train_seconds IS NOT NULL", t=since)[0]
    return {"job_seconds": {job: {"runs": count, "sum_s": round(float(total or 0), 1)} for job, count, total in jobs},
            "fit_seconds": {"mean": round(float(fits[0] or 0), 1), "max": round(float(fits[1] or 0), 1)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", type=int, default=8)
    ap.add_argument("--daemons", type=int, default=1)
    ap.add_argument("--workers", default="auto", help="FORECASTER_TRAIN_WORKERS of each daemon")
    ap.add_argument("--model", default="", help="FORECASTER_MODEL_OVERRIDES (default: the default model)")
    ap.add_argument("--close-after", type=int, default=8, help="s after T0 the next hour closes")
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    result = run(args)
    result["load_average_before_after"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
