"""BI query speed on Postgres with a year of hourly live forecasts for five markets (~1.05 M prediction rows).

Creates a fresh database (default `forecaster_bench`) on the server of --url, migrates it with the
project's own migrations (to --revision, default head, so that `--revision 0002` shows the time
before the BI indexes), fills it, then times the queries of docs/sql.md named below, every query
of the Grafana dashboard (deploy/grafana/dashboards/forecaster.json, its variables evaluated for
its default time range, the first market, live forecasts) and the SQL of its alert rules: each
is run --repeat times warm, and the median, fastest and slowest times are printed, then the plan of
one run of each (EXPLAIN ANALYZE, BUFFERS). Timings depend on the machine and its load: the load average
is printed beside them.

The queries run as Grafana runs them: as the read-only role of db/readonly.sql (created with psql
for the run, with its settings: read-only sessions, no JIT), unless --as-owner.

Volume: candles are the last --days of the real Binance ETH-USDT series, copied to five markets
with each market's price scale; every closed hour is a live origin with --horizon forecasts
around the close (one model run per week and market), plus a 90-day backtest per market and an
ingest and a predict job run per market and hour, as the daemon writes them. From migration 0005
on, each backtest points to its backtest run and per-horizon table, an earlier backtest over the
same days is in prediction_history, and so is one superseded live origin per day and market (the
nightly retrain's new model forecasting the newest origin again).

Statistics: the bench's database has autovacuum off (`autovacuum_enabled = off` on every table)
and nobody runs ANALYZE by hand, as after a bulk load on a server where autovacuum is off or has
not caught up yet. Every query is timed twice: first as loaded, with no statistics at all (once,
cancelled after --cold-timeout seconds; what the service left before it analysed its bulk writes),
then after the VACUUM (ANALYZE) the service itself runs after the jobs that wrote such a load
(db/statistics.py: import-csv and back-fill, backtest, `predict --at`), with no manual ANALYZE of
anything else (`model_runs` and `job_runs`, written a row at a time, stay unanalysed).

    .venv/bin/python bench/query_speed.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--days 365] [--markets 5] [--repeat 7] [--revision head] [--keep] [--reuse] [--no-plans]
        [--as-owner] [--cold-timeout 60] [--csv tests/data/binance_ETHUSDT_1h_2023.csv.gz]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_data import require_csv, shared_csv  # noqa: E402
from db.engine import make_engine  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.engine import make_session_factory  # noqa: E402
from db.statistics import analyze_after_write  # noqa: E402
MARKETS = [("binance", "ETH-USDT", 1.0), ("upbit", "ETH-KRW", 1300.0), ("bithumb", "ETH-KRW", 1302.0),
           ("binance", "BTC-USDT", 17.0), ("upbit", "BTC-KRW", 22000.0), ("bithumb", "BTC-KRW", 22050.0)]
# Every worked query of docs/sql.md (Postgres variants), then every query of the Grafana dashboard
# as Grafana sends it (default range, first market, live) and of its alert rules.
TABLES = ("candles", "predictions", "prediction_history", "model_runs", "model_weights", "job_runs",
          "backtest_runs", "backtest_horizons", "candle_gaps", "job_locks")
QUERY_RE = re.compile(r"```sql\n-- query: (\w+)(?: \[(\w+)\])?\n(.*?)```", re.S)
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "forecaster.json"
ALERTS = REPO / "deploy" / "grafana" / "provisioning" / "alerting" / "forecaster.yaml"



def documented_queries(dialect: str = "postgresql") -> dict[str, str]:
    """name -> SQL of docs/sql.md's queries for one dialect (shared and dialect-specific blocks)."""
    text = (REPO / "docs" / "sql.md").read_text()
    return {name: sql.strip().rstrip(";") for name, only, sql in QUERY_RE.findall(text)
            if only in ("", dialect)}


def _expand(sql: str, start: str, end: str, variables: dict[str, str]) -> str:
    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 BETWEEN '{start}' AND '{end}'", sql)
    sql = sql.replace("$__timeFrom()", f"'{start}'").replace("$__timeTo()", f"'{end}'")
    for name, value in variables.items():
        sql = sql.replace("${%s}" % name, value).replace(f"${name}", value)
    return sql


def dashboard_queries(conn, newest: datetime, market: str, kind: str = "live") -> dict[str, str]:
    """name -> SQL of every dashboard SQL target as Grafana sends it for its default range (a week
    before the newest candle to a day after it): macros expanded, variables evaluated in order."""
    start, end = ((newest + d).strftime("%Y-%m-%dT%H:%M:%SZ") for d in (timedelta(days=-7), timedelta(days=1)))
    dashboard = json.loads(DASHBOARD.read_text())
    values = {"market": f"'{market}'", "kind": kind}  # multi-select: Grafana quotes it
    for variable in dashboard["templating"]["list"]:
        if variable["name"] not in values:
            values[variable["name"]] = str(conn.execute(_expand(variable["query"], start, end, values)).fetchone()[0])
    out = {}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            if "rawSql" in target:
                out[f"grafana {panel['id']}{target['refId']}: {panel['title'][:24]}"] = (
                    _expand(target["rawSql"], start, end, values))
    return out


def alert_queries() -> dict[str, str]:
    import yaml
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    return {f"alert: {r['title'][:33]}": q["model"]["rawSql"] for r in rules for q in r["data"]
            if "rawSql" in q["model"]}


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
    # Migration 0007 keyed job runs by interval too (before it, the column does not exist).
    has_interval = conn.execute("SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'job_runs' "
                                "AND column_name = 'interval'").fetchone()[0] > 0
    job_interval, job_interval_value = (", interval", ", '1h'") if has_interval else ("", "")
    conn.execute(f"""
        INSERT INTO job_runs (job, exchange, symbol, started_at, finished_at, status, rows, message{job_interval})
        SELECT job, c.exchange, c.symbol, c.open_time + interval '1 hour 10 seconds',
               c.open_time + interval '1 hour 12 seconds', 'ok', 1, ''{job_interval_value}
        FROM candles c, (VALUES ('ingest'), ('predict')) j(job)
        ORDER BY c.open_time""")
    has_history = conn.execute("SELECT to_regclass('prediction_history') IS NOT NULL").fetchone()[0]
    if has_history:
        fill_history(conn, horizon)


def fill_history(conn, horizon: int) -> None:
    """Migration 0005's tables: two backtest runs per market over the same 90 days (the first
    superseded by the second, its rows in prediction_history), and the origin at 00:00 of every
    day forecast again by the nightly retrain's model (the first forecast in prediction_history)."""
    figures = "mae, naive_mae, rmae, coverage, interval_score, empirical_interval_score, empirical_coverage"
    conn.execute(f"""
        INSERT INTO backtest_runs (exchange, symbol, interval, started_at, finished_at, days, step, retrain_every,
                                   train_hours, horizon, config, code_version, device, first_origin, last_origin,
                                   n_origins, n_fits, fit_seconds, n, {figures}, ratio_vs_empirical)
        SELECT m.exchange, m.symbol, '1h', t.started, t.started + interval '20 minutes', 90, 1, 168, 4320,
               {horizon}, '{{}}', 'bench', 'cpu', m.first_origin, m.last_origin, m.n_origins, 13, 60,
               m.n_origins * {horizon}, 20, 20, 1, 0.78, 110, 112, 0.74, 0.98
        FROM (SELECT exchange, symbol, MIN(origin_time) AS first_origin, MAX(origin_time) AS last_origin,
                     COUNT(DISTINCT origin_time) AS n_origins
              FROM predictions WHERE kind = 'backtest' GROUP BY exchange, symbol) m,
             (VALUES (now() - interval '2 days'), (now() - interval '1 day')) t(started)
        ORDER BY t.started, m.exchange, m.symbol""")
    conn.execute(f"""
        INSERT INTO backtest_horizons (backtest_run_id, horizon, n, {figures})
        SELECT r.id, h, r.n_origins, 20, 20, 1, 0.78, 110, 112, 0.74
        FROM backtest_runs r, generate_series(1, {horizon}) h""")
    conn.execute("""
        UPDATE predictions p SET backtest_run_id = r.id
        FROM (SELECT exchange, symbol, MAX(id) AS id FROM backtest_runs GROUP BY exchange, symbol) r
        WHERE p.kind = 'backtest' AND p.exchange = r.exchange AND p.symbol = r.symbol""")
    columns = ("model_run_id, exchange, symbol, interval, kind, origin_time, target_time, horizon, yhat, "
               "yhat_lower, yhat_upper, created_at")
    earlier = "p." + columns.replace(", ", ", p.").replace("p.created_at", "p.created_at - interval '1 day'")
    conn.execute(f"""
        INSERT INTO prediction_history (prediction_id, backtest_run_id, superseded_at, {columns})
        SELECT p.id, r.id, p.created_at, {earlier}
        FROM predictions p
        JOIN (SELECT exchange, symbol, MIN(id) AS id FROM backtest_runs GROUP BY exchange, symbol) r
          ON p.exchange = r.exchange AND p.symbol = r.symbol
        WHERE p.kind = 'backtest'
        ORDER BY p.origin_time""")
    replaced = columns.replace("yhat,", "yhat * 1.001,")
    conn.execute(f"""
        INSERT INTO prediction_history (prediction_id, backtest_run_id, superseded_at, {columns})
        SELECT id, NULL, created_at + interval '30 minutes', {replaced}
        FROM predictions
        WHERE kind = 'live' AND EXTRACT(HOUR FROM origin_time AT TIME ZONE 'UTC') = 0
        ORDER BY origin_time""")


def bi_role(database: str) -> str:
    return f"{database}_bi"  # roles are per server: one per bench database


def create_bi_role(url: str, role: str) -> tuple[str, str] | None:
    """The read-only role of db/readonly.sql in the bench database, or None without psql."""
    psql = shutil.which("psql")
    if psql is None:
        return None
    password = secrets.token_hex(12)
    env = {**os.environ, "BI_USER": role, "BI_PASSWORD": password}
    done = subprocess.run([psql, url, "-X", "-q", "-f", str(REPO / "db" / "readonly.sql")], env=env,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"db/readonly.sql failed: {done.stderr.strip()}")
    return role, password


def drop_bi_role(admin_url: str, role: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            try:
                conn.execute(f'DROP ROLE "{role}"')
            except psycopg.Error as exc:  # it still has privileges in a database kept with --keep
                print(f"role {role} kept: {str(exc).splitlines()[0]}", file=sys.stderr)


def autovacuum_off(conn) -> None:
    """As on a server where autovacuum is off (or far behind): only the service's ANALYZE runs."""
    for table in TABLES:
        if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")


def service_statistics(url: str) -> list[str]:
    """The ANALYZE the service runs after the jobs that write such a load (db/statistics.py), each
    with the rows that job would have written; the tables it analysed."""
    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    sessions = make_session_factory(engine)
    done = []
    with psycopg.connect(url) as conn:
        for job, table in (("import", "candles"), ("backtest", "predictions"), ("predict", "predictions")):
            rows = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            if analyze_after_write(sessions, job, rows):
                done.append(job)
    engine.dispose()
    return done


def cold(conn, sql: str, timeout_s: float) -> tuple[float | None, int]:
    """One run as loaded (no statistics): ms, or None when cancelled after timeout_s."""
    conn.execute(f"SET statement_timeout = {int(timeout_s * 1000)}")
    try:
        times, rows = timed(conn, sql, 1)
        return times[0], rows
    except psycopg.errors.QueryCanceled:
        return None, 0
    finally:
        conn.execute("RESET statement_timeout")


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
    ap.add_argument("--cold-timeout", type=float, default=60.0,
                    help="seconds a query may run before it has statistics (the read-only role's limit: 60)")
    ap.add_argument("--as-owner", action="store_true",
                    help="time as the owner of the tables instead of the read-only role Grafana uses")
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
        with psycopg.connect(url, autocommit=True) as owner:
            autovacuum_off(owner)
    queries = documented_queries()
    try:
        with psycopg.connect(url, autocommit=True) as owner:
            t0 = time.perf_counter()
            if not args.reuse:
                with owner.transaction():
                    fill(owner, args.csv, args.days, args.markets, args.horizon)
            filled = "reused" if args.reuse else f"filled in {time.perf_counter() - t0:.0f}s"
        role = None if args.as_owner else create_bi_role(url, bi_role(args.database))
        who = f"as the read-only role {role[0]}" if role else "as the owner of the tables"
        connect = dict(user=role[0], password=role[1]) if role else {}
        with psycopg.connect(url, autocommit=True, **connect) as conn:
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                      for t in ("candles", "predictions", "model_runs", "job_runs")}
            live = conn.execute("SELECT COUNT(*) FROM predictions WHERE kind = 'live'").fetchone()[0]
            print(f"{filled}, at migration {revision}: "
                  + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + f" ({live:,} live predictions)")
            print(conn.execute("SELECT version()").fetchone()[0].split(" on ")[0])
            newest = conn.execute("SELECT MAX(open_time) FROM candles").fetchone()[0]
            market = "%s:%s" % MARKETS[0][:2]
            todo = dict(queries)
            if revision >= "0005":
                todo |= dashboard_queries(conn, newest, market) | alert_queries()
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            print(f"{os.cpu_count()} CPUs, load average {load:.1f}; each query run {args.repeat} times warm, {who}")
            # As loaded: no statistics. Once each, cancelled after --cold-timeout seconds.
            unanalysed = {}
            if not args.reuse:
                for name, sql in todo.items():
                    try:
                        unanalysed[name] = cold(conn, sql, args.cold_timeout)[0]
                    except psycopg.Error as exc:  # a query of a later migration, on --revision
                        unanalysed[name] = exc
                analysed = service_statistics(url)
                print(f"statistics: none as loaded (autovacuum off, no manual ANALYZE); then the service's own "
                      f"VACUUM (ANALYZE) after {', '.join(analysed) or 'nothing'}")
            print(f"{'query':40} {'rows':>6} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'no-stats ms':>12}")
            plans = []
            for name, sql in todo.items():
                try:
                    timed(conn, sql, 1)  # warm the cache once
                except psycopg.Error as exc:  # a query of a later migration, on --revision
                    print(f"{name:40} fails at migration {revision}: {str(exc).splitlines()[0]}")
                    continue
                times, rows = timed(conn, sql, args.repeat)
                before = unanalysed.get(name, "-")
                before = ("-" if isinstance(before, (str, Exception)) else
                          f">{args.cold_timeout * 1000:.0f}" if before is None else f"{before:.2f}")
                print(f"{name:40} {rows:>6} {statistics.median(times):>10.2f} {min(times):>8.2f} {max(times):>8.2f}"
                      f" {before:>12}")
                if not args.no_plans:
                    plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").fetchall()
                    plans.append(f"\n--- {name}\n{sql}\n" + "\n".join(r[0] for r in plan))
            print("\n".join(plans))
    finally:
        if not (args.keep or args.reuse):
            with psycopg.connect(args.url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            drop_bi_role(args.url, bi_role(args.database))
    return 0


if __name__ == "__main__":
    sys.exit(main())
