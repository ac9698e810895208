"""CPU time of a day of ingest + forecast cycles for 15-minute markets: 96 cycles of the job
functions the daemon runs (ingest, then predict from the new candle with the promoted model), each
after the test exchange on loopback has closed one more quarter hour.

    .venv/bin/python bench/ingest_15m.py [--markets 2] [--cycles 96]

The 15-minute candles are the synthetic quarters of tests/data's real 2023 hours
(tests/helpers/candle_data.py: there is no real 15m data in the data set); what is measured is the
service's own work per cycle (HTTP on loopback, SQLite writes, the forecast), which does not depend
on the prices.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exchanges.base import parse_market  # noqa: E402
from tests.helpers.candle_data import quarter_hours  # noqa: E402
from tests.helpers.fake_exchange import USDT_CSV, FakeExchange, load_csv_slice  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", type=int, default=2)
    ap.add_argument("--cycles", type=int, default=96)
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from db.migrate import upgrade
    from jobs.bootstrap import bootstrap
    from jobs.ingest import ingest_market
    from jobs.predict import predict_market
    from jobs.settings import load_settings
    from jobs.train import train_market

    quarters = quarter_hours(load_csv_slice(USDT_CSV, "2023-06-01T00:00:00Z", 24 * 120))
    names = [f"binance:C{i}-USDT@15m" for i in range(args.markets)]
    markets = [parse_market(n) for n in names]
    start = quarters[-args.cycles - 1].open_time + timedelta(minutes=15, seconds=10)  # one day before the end
    with tempfile.TemporaryDirectory() as tmp, FakeExchange({n: quarters for n in names}, now=start) as fake:
        url = f"sqlite:///{tmp}/bench.db"
        svc = bootstrap(load_settings(database_url=url, device="cpu", binance_url=fake.base_url("binance")))
        upgrade(svc.engine)
        for m in markets:  # back-fill what exists, then train the default 15m model once
            ingest_market(svc, m, backfill_days=120, now=start)
            t0 = time.perf_counter()
            outcome = train_market(svc, m, train_hours=8640)
            print(f"{m}: {outcome.status} in {time.perf_counter() - t0:.1f}s wall ({outcome.metrics.band_source})")
            predict_market(svc, m)
        per_cycle = []
        for i in range(args.cycles):
            now = start + (i + 1) * timedelta(minutes=15)
            fake.now = now
            before = _cpu()
            for m in markets:
                ingest_market(svc, m, backfill_days=120, now=now)
                predict_market(svc, m)
            per_cycle.append((_cpu() - before) / len(markets))
        svc.close()
    total = sum(per_cycle) * len(markets)
    print(f"{args.cycles} cycles x {len(markets)} 15m markets: CPU per market and cycle median "
          f"{1000 * statistics.median(per_cycle):.0f} ms (max {1000 * max(per_cycle):.0f} ms); a day of "
          f"cycles {sum(per_cycle):.1f} s CPU per market, {total:.1f} s for all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
