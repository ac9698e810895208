"""BI query speed on Postgres with a year of hourly live forecasts for five markets (~1.05 M prediction rows).

Creates a fresh database (default `forecaster_bench`) on the server of --url, migrates it with the
project's own migrations (to --revision, default head, so that `--revision 0002` shows the time
before the BI indexes), fills it, then times the queries of docs/sql.md named below and every
query of the Grafana dashboard (deploy/grafana/dashboards/forecaster.json, its default time range,
the first market, live forecasts): each is run --repeat times warm, and the median and slowest
times are printed, then the plan of one run of each (EXPLAIN ANALYZE, BUFFERS). Timings depend on
the machine and its load: the load average is printed beside them.

Volume: candles are the last --days of the real Binance ETH-USDT series, copied to five markets
with each market's price scale; every closed hour is a live origin with --horizon forecasts
around the close (one model run per week and market), plus a 90-day backtest per market and an
ingest and a predict job run per market and hour, as the daemon writes them.

    .venv/bin/python bench/query_speed.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--days 365] [--markets 5] [--repeat 7] [--revision head] [--keep] [--reuse] [--no-plans]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_data import require_csv, shared_csv  # noqa: E402
from db.engine import make_engine  # noqa: E402
from db.migrate import upgrade  # noqa: E402
MARKETS = [("binance", "ETH-USDT", 1.0), ("upbit", "ETH-KRW", 1300.0), ("bithumb", "ETH-KRW", 1302.0),
           ("binance", "BTC-USDT", 17.0), ("upbit", "BTC-KRW", 22000.0), ("bithumb", "BTC-KRW", 22050.0)]
# The worked queries of docs/sql.md that a dashboard or a user runs often (Postgres variants), then
# every query of the Grafana dashboard as Grafana sends it (default range, first market, live).
QUERIES = ["latest_forecast", "latest_forecast_all", "accuracy_by_horizon_30d", "band_coverage_30d",
           "daily_accuracy", "forecast_vs_actual", "candle_lag", "job_failures_last_day"]
QUERY_RE = re.compile(r"```sql\n-- query: (\w+)(?: \[(\w+)\])?\n(.*?)```", re.S)
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "forecaster.json"


def documented_queries(dialect: str = "postgresql") -> dict[str, str]:
    """name -> SQL of docs/sql.md's queries for one dialect (shared and dialect-specific blocks)."""
    text = (REPO / "docs" / "sql.md").read_text()
    return {name: sql.strip().rstrip(";") for name, only, sql in QUERY_RE.findall(text)
            if only in ("", dialect)}


def dashboard_queries(newest: datetime, market: str, kind: str = "live") -> dict[str, str]:
    """name -> SQL of every dashboard target, with Grafana's macros expanded for its default range
    (a week before the newest candle to a day after it)."""
    start, end = ((newest + d).strftime("%Y-%m-%dT%H:%M:%SZ") for d in (timedelta(days=-7), timedelta(days=1)))
    out = {}
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 BETWEEN '{start}' AND '{end}'", target["rawSql"])
            out[f"grafana {panel['id']}{target['refId']}: {panel['title'][:24]}"] = (
                sql.replace("$market", market).replace("$kind", kind))
    return out


def create_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def fill(conn, csv: Path, days: int, n_markets: int, horizon: int) -> None:
    hours = days * 24
    frame = pd.read_csv(csv).tail(hours)
    buf = io.StringIO()
    for exchange, symbol, scale in MARKETS[:n_markets]:
        for r in frame.itertuples(index=False):
            buf.write(f"{exchange}\t{symbol}\t1h\t{r.ts}\t{r.open * scale}\t{r.high * scale}\t{r.low * scale}\t"
                      f"{r.close * scale}\t{r.volume}\tcsv\t{r.ts}\n")
    with conn.cursor().copy("COPY candles (exchange, symbol, interval, open_time, open, high, low, close, "
                            "volume, source, ingested_at) FROM STDIN") as copy:
        copy.write(buf.getvalue())
    # One model run per market and week; the newest promoted, the others retired.
    conn.execute("""
        INSERT INTO model_runs (exchange, symbol, interval, status, started_at, finished_at, train_start,
                                train_end, n_train, n_val, device, epochs, train_seconds, val_mae,
                                val_naive_mae, val_rmae, val_coverage, config)
        SELECT m.exchange, m.symbol, '1h', 'retired', w, w + interval '5 minutes', w - interval '180 days', w,
               3500, 720, 'cpu', 12, 300, 10 + random(), 10.5, 0.95 + random() / 20, 0.8, '{}'
        FROM (SELECT DISTINCT exchange, symbol FROM candles) m,
             generate_series((SELECT MIN(open_time) FROM candles), (SELECT MAX(open_time) FROM candles),
                             interval '7 days') w
        ORDER BY w, m.exchange, m.symbol""")
    conn.execute("""UPDATE model_runs SET status = 'promoted' WHERE id IN
                    (SELECT MAX(id) FROM model_runs GROUP BY exchange, symbol)""")
    # Every closed hour is an origin: `horizon` live rows written together, as the daemon does.
    conn.execute(f"""
        INSERT INTO predictions (model_run_id, exchange, symbol, interval, kind, origin_time, target_time,
                                 horizon, yhat, yhat_lower, yhat_upper, created_at)
        WITH c AS MATERIALIZED (
            SELECT c.*, (SELECT MAX(r.id) FROM model_runs r WHERE r.exchange = c.exchange
                           AND r.symbol = c.symbol AND r.started_at <= c.open_time) AS run_id
            FROM candles c)
        SELECT CASE WHEN kind = 'live' THEN c.run_id END,
               c.exchange, c.symbol, '1h', kind, c.open_time, c.open_time + h * interval '1 hour', h,
               c.close * (1 + 0.002 * sin(h + extract(epoch FROM c.open_time) / 3600)),
               c.close * (1 - 0.006 * sqrt(h)), c.close * (1 + 0.006 * sqrt(h)),
               c.open_time + interval '1 hour 10 seconds'
        FROM c, generate_series(1, {horizon}) h,
             (VALUES ('live'), ('backtest')) k(kind)
        WHERE kind = 'live' OR c.open_time >= (SELECT MAX(open_time) FROM candles) - interval '90 days'
        ORDER BY c.open_time, c.exchange, c.symbol, h""")
    conn.execute("""
        INSERT INTO job_runs (job, exchange, symbol, started_at, finished_at, status, rows, message)
        SELECT job, c.exchange, c.symbol, c.open_time + interval '1 hour 10 seconds',
               c.open_time + interval '1 hour 12 seconds', 'ok', 1, ''
        FROM candles c, (VALUES ('ingest'), ('predict')) j(job)
        ORDER BY c.open_time""")


def timed(conn, sql: str, repeat: int) -> tuple[list[float], int]:
    times, rows = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = len(conn.execute(sql).fetchall())
        times.append((time.perf_counter() - t0) * 1000)
    return times, rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("FORECASTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
                    help="a Postgres URL whose server may get a new database")
    ap.add_argument("--database", default="forecaster_bench")
    ap.add_argument("--csv", type=Path, default=shared_csv(), help="default: the development data set's Binance file")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--markets", type=int, default=5, choices=range(1, len(MARKETS) + 1))
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--revision", default="head", help="migrate to this revision (0002: before the BI indexes)")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--reuse", action="store_true", help="time the database a --keep run left, without refilling it")
    ap.add_argument("--no-plans", action="store_true", help="print timings only")
    args = ap.parse_args(argv)
    if not args.reuse:
        require_csv(args.csv, "--csv ")

    if args.reuse:
        url = args.url.rsplit("/", 1)[0] + "/" + args.database
    else:
        url = create_database(args.url, args.database)
        engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        upgrade(engine, args.revision)
        engine.dispose()
    queries = documented_queries()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            t0 = time.perf_counter()
            if not args.reuse:
                with conn.transaction():
                    fill(conn, args.csv, args.days, args.markets, args.horizon)
                conn.execute("VACUUM ANALYZE")
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                      for t in ("candles", "predictions", "model_runs", "job_runs")}
            live = conn.execute("SELECT COUNT(*) FROM predictions WHERE kind = 'live'").fetchone()[0]
            filled = "reused" if args.reuse else f"filled in {time.perf_counter() - t0:.0f}s"
            print(f"{filled}, at migration {revision}: "
                  + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + f" ({live:,} live predictions)")
            print(conn.execute("SELECT version()").fetchone()[0].split(" on ")[0])
            newest = conn.execute("SELECT MAX(open_time) FROM candles").fetchone()[0]
            market = "%s:%s" % MARKETS[0][:2]
            todo = {name: queries[name] for name in QUERIES} | dashboard_queries(newest, market)
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            print(f"{os.cpu_count()} CPUs, load average {load:.1f}; each query run {args.repeat} times warm")
            print(f"{'query':40} {'rows':>6} {'median ms':>10} {'max ms':>8}")
            plans = []
            for name, sql in todo.items():
                timed(conn, sql, 1)  # warm the cache once
                times, rows = timed(conn, sql, args.repeat)
                print(f"{name:40} {rows:>6} {statistics.median(times):>10.2f} {max(times):>8.2f}")
                if not args.no_plans:
                    plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").fetchall()
                    plans.append(f"\n--- {name}\n{sql}\n" + "\n".join(r[0] for r in plan))
            print("\n".join(plans))
    finally:
        if not (args.keep or args.reuse):
            with psycopg.connect(args.url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
