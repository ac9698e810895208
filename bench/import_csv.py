"""Import speed and memory of `forecaster import-csv` on the real 55,740-row Binance file.

    .venv/bin/python bench/import_csv.py [--csv PATH] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

--csv defaults to the Binance file of the development data set (bench_data.py says where it is).

For SQLite and Postgres: the import into an empty store, the same import again (every row a
conflict), and beside them a plain DBAPI `executemany` INSERT of the same rows into a table of the
same shape in the same database. Peak memory is the process's peak RSS growth during the import.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.* as a script, as the other benches

from bench.bench_data import require_csv, shared_csv  # noqa: E402
from db.engine import make_engine, make_session_factory  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from exchanges.base import parse_market  # noqa: E402
from jobs.bootstrap import Services  # noqa: E402
from jobs.import_csv import import_csv  # noqa: E402
from jobs.settings import load_settings  # noqa: E402

PLAIN_TABLE = """CREATE TABLE plain_candles (exchange VARCHAR(32), symbol VARCHAR(32), interval VARCHAR(8),
 open_time TIMESTAMP, open DOUBLE PRECISION, high DOUBLE PRECISION, low DOUBLE PRECISION,
 close DOUBLE PRECISION, volume DOUBLE PRECISION, source VARCHAR(8), ingested_at TIMESTAMP,
 PRIMARY KEY (exchange, symbol, interval, open_time))"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plain_rows(csv: Path) -> list[tuple]:
    df = pd.read_csv(csv)
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).to_pydatetime()
    times = pd.to_datetime(df.ts, utc=True).dt.tz_localize(None).dt.to_pydatetime()
    return [("binance", "ETH-USDT", "1h", t, o, h, lo, c, v, "csv", now)
            for t, o, h, lo, c, v in zip(times, df.open, df.high, df.low, df.close, df.volume)]


def time_plain(engine, rows: list[tuple]) -> float:
    placeholder = "?" if engine.dialect.name == "sqlite" else "%s"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(PLAIN_TABLE)
        started = time.perf_counter()
        cur.executemany(f"INSERT INTO plain_candles VALUES ({', '.join([placeholder] * 11)})", rows)
        raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


def bench(name: str, url: str, csv: Path, rows: list[tuple]) -> None:
    engine = make_engine(url)
    upgrade(engine)
    services = Services(load_settings(database_url=url), engine, make_session_factory(engine))
    market = parse_market("binance:ETH-USDT")
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    first = import_csv(services, csv, market)
    t_first = time.perf_counter() - started
    rss_growth = peak_rss_mb() - rss_before
    started = time.perf_counter()
    again = import_csv(services, csv, market)
    t_again = time.perf_counter() - started
    t_plain = time_plain(engine, rows)
    n = first.rows_read
    print(f"{name:8} import   {n} rows in {t_first:6.2f}s = {n / t_first:9,.0f} rows/s "
          f"({first.new_rows} new; peak RSS growth {rss_growth:.0f} MB)")
    print(f"{name:8} re-import {n} rows in {t_again:6.2f}s = {n / t_again:9,.0f} rows/s ({again.new_rows} new)")
    print(f"{name:8} plain executemany {len(rows)} rows in {t_plain:6.2f}s = {len(rows) / t_plain:9,.0f} rows/s"
          f"  -> import is {t_first / t_plain:.2f}x, re-import {t_again / t_plain:.2f}x the plain insert's time")
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=shared_csv())
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                    help="a Postgres URL whose server may get a scratch database (dropped after)")
    ap.add_argument("--skip-pg", action="store_true")
    args = ap.parse_args()
    require_csv(args.csv, "--csv ")
    rows = plain_rows(args.csv)
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{tmp}/bench.db", args.csv, rows)
    if args.skip_pg:
        return
    admin = args.pg.replace("+psycopg", "")
    name = f"forecaster_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        bench("postgres", args.pg.rsplit("/", 1)[0] + "/" + name, args.csv, rows)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
