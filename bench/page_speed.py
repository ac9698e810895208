"""How fast the daemon's overview page (`GET /`) answers for 40 markets, on SQLite and on Postgres,
and how much a training running in the same process delays it.

Fills a fresh SQLite file and a fresh Postgres database (dropped afterwards unless --keep) with
--markets markets (default 40, spread over the three exchanges): --candle-days of hourly candles
(the real Binance ETH-USDT series of tests/data, scaled per market), a live forecast of 24 horizons
from every hour of the last --forecast-days, a promoted model and an ingest, train and predict run
per market and hour, as the daemon writes them. Then, per database:
- the page built in-process (reports.web.pages.Pages.answer), --repeat times: median, p95, slowest;
- the same while a training of the default model runs on a thread of the same process, as in the
  daemon (torch with all cores but one), and the delay it causes;
- both again over HTTP from the daemon's own server (daemon/health_server.py). Note: until the
  server's watcher is woken by new connections (branch i21), each request there waits up to 250 ms
  for the watcher's selector timeout, which the HTTP figures include.
Targets (issue 19): overview under 200 ms; a training delays it by under 100 ms.

    .venv/bin/python bench/page_speed.py [--markets 40] [--forecast-days 14] [--candle-days 60]
        [--repeat 30] [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--no-pg] [--keep]
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from core.market import Market  # noqa: E402
from db.engine import make_engine, make_session_factory  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.models import Candle, JobRun, ModelRun, Prediction  # noqa: E402
from daemon.health_server import HealthServer  # noqa: E402
from daemon.metrics import Metrics  # noqa: E402
from daemon.state import DaemonState  # noqa: E402
from reports.web.pages import Pages  # noqa: E402

CSV = REPO / "tests" / "data" / "binance_ETHUSDT_1h_2023.csv.gz"
HORIZONS = 24
CHUNK = 20_000


def make_markets(n: int) -> list[Market]:
    spread = [("bithumb", "KRW"), ("upbit", "KRW"), ("binance", "USDT")]
    return [Market(spread[i % 3][0], f"C{i:02d}", spread[i % 3][1]) for i in range(n)]


def fill(sessions, markets: list[Market], candle_days: int, forecast_days: int) -> int:
    """Rows written; the newest candle is the last closed hour, so the page shows no lag."""
    frame = pd.read_csv(CSV).tail(candle_days * 24).reset_index(drop=True)
    closes = frame["close"].to_numpy(float)
    newest = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    times = [newest - timedelta(hours=len(closes) - 1 - i) for i in range(len(closes))]
    now, written = datetime.now(timezone.utc), 0
    for k, m in enumerate(markets):
        scale = 1300.0 * (1 + k / 100) if m.quote == "KRW" else 1 + k / 100
        key = {"exchange": m.exchange, "symbol": m.symbol, "interval": m.interval}
        candles = [{**key, "open_time": t, "open": c * scale, "high": c * scale * 1.002, "low": c * scale * 0.998,
                    "close": c * scale, "volume": 1.0, "source": "bench", "ingested_at": now}
                   for t, c in zip(times, closes)]
        preds, runs = [], []
        first = len(times) - forecast_days * 24
        for i in range(first, len(times)):
            origin, base = times[i], closes[i] * scale
            for h in range(1, HORIZONS + 1):
                half = base * 0.004 * h ** 0.5
                preds.append({**key, "model_run_id": k + 1, "kind": "live", "origin_time": origin,
                              "target_time": origin + timedelta(hours=h), "horizon": h, "yhat": base,
                              "yhat_lower": base - half, "yhat_upper": base + half, "created_at": now})
            for job in ("ingest", "train", "predict"):
                runs.append({**key, "job": job, "started_at": origin + timedelta(minutes=1),
                             "finished_at": origin + timedelta(minutes=2), "status": "ok", "rows": 1})
        with sessions.begin() as s:
            s.execute(insert(ModelRun), [{**key, "id": k + 1, "status": "promoted", "started_at": now,
                                          "finished_at": now, "band_source": "empirical 1-24",
                                          "val_interval_score": 1.0, "val_free_interval_score": 1.1}])
            for table, rows in ((Candle, candles), (Prediction, preds), (JobRun, runs)):
                for start in range(0, len(rows), CHUNK):
                    s.execute(insert(table), rows[start:start + CHUNK])
        written += len(candles) + len(preds) + len(runs) + 1
    return written


def timings(fn, repeat: int) -> list[float]:
    fn()  # warm: first statements prepared, caches filled
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def describe(ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms  slowest {ms[-1]:6.1f} ms"


def delay(idle: list[float], busy: list[float]) -> str:
    p95 = lambda ms: sorted(ms)[int(0.95 * (len(ms) - 1))]  # noqa: E731
    return (f"median {statistics.median(busy) - statistics.median(idle):+.1f} ms, "
            f"p95 {p95(busy) - p95(idle):+.1f} ms")


class Training:
    """The default model training on a thread of this process, one fit after another (a fit takes
    about a second: the daemon retrains its markets back to back), as the daemon trains."""

    def __init__(self) -> None:
        self.stop, self.started = threading.Event(), threading.Event()
        self.epochs = 0
        self.thread = threading.Thread(target=self._run, name="bench-training", daemon=True)

    def _run(self) -> None:
        from forecaster.config import ModelConfig
        from forecaster.errors import TrainingCancelled
        from forecaster.frames import candles_frame
        from forecaster.train import train
        frame = candles_frame(pd.read_csv(CSV))
        self.started.set()  # the data preparation counts too: it is part of a training
        while not self.stop.is_set():
            try:
                train(frame, ModelConfig(), "cpu", train_steps=4320, stop=self.stop)
            except TrainingCancelled:
                return
            self.epochs += 1  # fits done

    def __enter__(self) -> Training:
        self.thread.start()
        self.started.wait(60)
        time.sleep(1.0)  # into the epochs
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(120)


def bench_backend(name: str, url: str, markets: list[Market], args) -> None:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    started = time.perf_counter()
    rows = fill(sessions, markets, args.candle_days, args.forecast_days)
    if engine.dialect.name == "postgresql":  # what autovacuum does soon after; the daemon never runs it on SQLite
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    print(f"{name}: {rows:,} rows for {len(markets)} markets in {time.perf_counter() - started:.0f} s")
    pages = Pages(sessions, markets)
    started = time.perf_counter()
    assert pages.answer("/").status == 200
    print(f"  first GET / after start (reads every market's week of forecasts): "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")
    in_idle = timings(lambda: pages.answer("/"), args.repeat)
    print(f"  in-process GET /     {describe(in_idle)}")
    state = DaemonState.for_markets(markets, 3)
    server = HealthServer(state, Metrics(state), 0, pages=pages).start()
    url_root = f"http://127.0.0.1:{server.port}/"
    http = requests.Session()
    try:
        get = lambda: http.get(url_root, timeout=30).raise_for_status()  # noqa: E731
        idle = timings(get, args.repeat)
        print(f"  HTTP GET /, idle     {describe(idle)}")
        with Training() as training:
            in_busy = timings(lambda: pages.answer("/"), args.repeat)
            busy = timings(get, args.repeat)
        print(f"  in-process, training {describe(in_busy)}")
        print(f"  HTTP GET /, training {describe(busy)}  ({training.epochs} fits ran meanwhile)")
        print(f"  delay by the training: in-process {delay(in_idle, in_busy)}; over HTTP {delay(idle, busy)}")
    finally:
        server.close()
        engine.dispose()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", type=int, default=40)
    ap.add_argument("--candle-days", type=int, default=60)
    ap.add_argument("--forecast-days", type=int, default=14)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--pg", default=os.environ.get("FORECASTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # the daemon leaves a core to the rest
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; torch threads {torch.get_num_threads()}")
    markets = make_markets(args.markets)
    with tempfile.TemporaryDirectory() as tmp:
        bench_backend("SQLite", f"sqlite:///{tmp}/page_speed.db", markets, args)
    if args.no_pg:
        return 0
    import psycopg
    name = f"forecaster_pages_{secrets.token_hex(4)}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        bench_backend("Postgres", f"{base}/{name}", markets, args)
    finally:
        if not args.keep:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
