"""Training speed: train on the last 4,320 h of a CSV (default Binance; the volatility model on the
last year), then time load + forecast. Prints seconds, epochs, peak RSS.

    .venv/bin/python bench/train_speed.py [CSV] [--threads 2] [--device cpu]

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
from forecaster.config import ModelConfig  # noqa: E402
from forecaster.frames import candles_frame  # noqa: E402
from forecaster.predict import Forecaster  # noqa: E402
from forecaster.train import train  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", default=shared_csv())
    ap.add_argument("--hours", type=int, default=4320)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = ModelConfig()
    frame = candles_frame(pd.read_csv(require_csv(args.csv, ""))).iloc[-max(args.hours, cfg.volatility_steps):]
    started = time.perf_counter()
    res = train(frame, cfg, args.device, train_steps=args.hours,
                progress=lambda e, n, tl, vl: print(f"epoch {e}/{n} train {tl:.4f} val {vl:.4f}",
                                                    file=sys.stderr))
    seconds = time.perf_counter() - started
    m = res.metrics
    print(f"train {seconds:.1f} s on {len(frame)} h ({m.device}), epochs {m.epochs}, "
          f"n_train {m.n_train}, n_val {m.n_val}, val rMAE {m.val_rmae:.4f}, "
          f"val coverage {m.val_coverage:.3f}, band {m.band_source}")
    print("shrink:", " ".join(f"{v:.2f}" for v in m.shrink))
    t0 = time.perf_counter()
    fc = Forecaster.load(res.weights, "cpu")
    t1 = time.perf_counter()
    out = fc.forecast(frame)
    t2 = time.perf_counter()
    print(f"load {1000 * (t1 - t0):.1f} ms, forecast {1000 * (t2 - t1):.1f} ms, "
          f"weights {len(res.weights) / 1024:.0f} KiB")
    print(out.head(3).to_string(index=False))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
