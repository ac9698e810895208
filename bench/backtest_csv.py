"""Walk-forward backtest of a CSV (header ts,open,high,low,close,volume) with the contract
defaults; prints the per-horizon table, fit time, wall time and peak memory.

    .venv/bin/python bench/backtest_csv.py [CSV] [--until 2022-12-31T23:00Z] [--days 90] [--threads 2]

CSV defaults to the Binance file of the development data set (bench_data.py says where it is).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_data import require_csv, shared_csv  # noqa: E402
from forecaster.backtest import walk_forward  # noqa: E402
from forecaster.config import ModelConfig  # noqa: E402
from forecaster.frames import candles_frame, to_utc  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", default=shared_csv())
    ap.add_argument("--until", help="drop candles after this UTC time (test other periods)")
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--retrain-every", type=int, default=168)
    ap.add_argument("--train-hours", type=int, default=4320)
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    frame = candles_frame(pd.read_csv(require_csv(args.csv, "")))
    if args.until:
        frame = frame.loc[:to_utc(args.until)]
    started = time.perf_counter()
    res = walk_forward(frame, days=args.days, step=args.step, retrain_every=args.retrain_every,
                       train_steps=args.train_hours, horizon=args.horizon,
                       config=ModelConfig(horizon=args.horizon, seed=args.seed),
                       device=args.device,
                       progress=lambda i, n: print(f"fit {i}/{n}", file=sys.stderr, flush=True))
    wall = time.perf_counter() - started
    from jobs.backtest import BacktestOutcome
    print(f"{Path(args.csv).name}  last candle {frame.index[-1]}")
    print(BacktestOutcome(Path(args.csv).stem, res.table, res.summary).report())
    s = res.summary
    shrink = [f["metrics"].shrink for f in res.fits]
    print("mean shrink per horizon:", " ".join(f"{v:.2f}" for v in pd.DataFrame(shrink).mean()))
    print("epochs per fit:", [f["metrics"].epochs for f in res.fits])
    print(f"fit time {s.fit_seconds:.1f} s  wall {wall:.1f} s  peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
