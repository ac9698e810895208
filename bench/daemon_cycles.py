"""Daemon cycles: resident memory of `forecaster run` over simulated hourly cycles with two markets
(it must not grow cycle after cycle), and the CPU time of one ingest + predict cycle per market.

The daemon runs as a user runs it (a subprocess) against the fake exchange, with real candles
re-timed to end in the real past; each cycle releases one more closed hour per market and waits
until the daemon has stored it and forecast from it. The ingest cron ticks every --tick seconds and
a cycle is released right after the previous one is done, so each tick is one simulated hour.
Memory and CPU are read from /proc/<pid>.

    .venv/bin/python bench/daemon_cycles.py [--cycles 24] [--tick 3] [--db URL]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db.engine import make_engine  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from tests.helpers.daemon_harness import (DaemonProcess, MarketFeed, as_utc, daemon_env,  # noqa: E402
                                          newest_live_origin)
from tests.helpers.fake_exchange import FakeExchange  # noqa: E402

MARKETS = ["bithumb:ETH-KRW", "binance:ETH-USDT"]
# The default architecture (lookback 168, hidden 64), one epoch on a short window: a quick start, and
# forecasts that cost what they cost in production.
MODEL = {"lookback": 168, "patch": 4, "hidden_size": 64, "num_layers": 1, "max_epochs": 1, "val_steps": 720}
TICKS = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=24)
    ap.add_argument("--tick", type=int, default=3, help="seconds between ingest runs (one simulated hour)")
    ap.add_argument("--db", help="database URL (default: a SQLite file in a temporary folder)")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="daemon-cycles-"))
    url = args.db or f"sqlite:///{workdir / 'forecaster.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with FakeExchange() as fake:
        feeds = {m: MarketFeed(fake, m, hours=1900, held_back=args.cycles + 1) for m in MARKETS}
        env = daemon_env(url, fake, MARKETS, ingest_cron=f"*/{args.tick} * * * * *", backfill_days=75,
                         train_steps=1600, model_overrides=json.dumps(MODEL), log_level="WARNING")
        daemon = DaemonProcess(env, workdir / "daemon.log")
        pid = daemon.proc.pid

        def caught_up():
            return all(as_utc(newest_live_origin(engine, m)) == feeds[m].newest for m in MARKETS)
        try:
            started = time.monotonic()
            daemon.wait_for(caught_up, "catch-up (back-fill, training, first forecasts)", timeout=600)
            print(f"catch-up: {time.monotonic() - started:.1f}s, RSS {rss_mib(pid):.1f} MiB, "
                  f"CPU {cpu_seconds(pid):.1f}s", flush=True)
            rss, cpu = [rss_mib(pid)], []
            for cycle in range(1, args.cycles + 1):
                before = cpu_seconds(pid)
                for feed in feeds.values():
                    feed.release(1)
                daemon.wait_for(caught_up, f"cycle {cycle}", timeout=60, every=0.05)
                time.sleep(0.3)  # let the cycle's last writes and log lines finish
                cpu.append(cpu_seconds(pid) - before)
                rss.append(rss_mib(pid))
                print(f"cycle {cycle:2d}: RSS {rss[-1]:7.1f} MiB  CPU {cpu[-1]:.3f}s", flush=True)
            rc, stop_s = daemon.terminate()
        finally:
            daemon.close()
    half = rss[len(rss) // 2:]
    slope = statistics.linear_regression(range(len(half)), half).slope if len(half) > 1 else 0.0
    print(f"\nRSS after catch-up {rss[0]:.1f} MiB, after cycle {args.cycles // 2}: {rss[args.cycles // 2]:.1f} MiB, "
          f"after cycle {args.cycles}: {rss[-1]:.1f} MiB; second half slope {slope * 1024:+.0f} KiB/cycle")
    print(f"CPU per cycle (ingest + predict for {len(MARKETS)} markets): median {statistics.median(cpu):.3f}s, "
          f"max {max(cpu):.3f}s -> {statistics.median(cpu) / len(MARKETS):.3f}s per market")
    print(f"SIGTERM: exit {rc} in {stop_s:.2f}s; database {url}, log {workdir / 'daemon.log'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
