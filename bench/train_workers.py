"""How many trainings at once, with how many torch threads each, give the most fits per minute on this
machine: the measurement behind FORECASTER_TRAIN_WORKERS=auto (daemon/training.py, docs/scaling.md).

Each configuration runs in a fresh process (torch's thread pool is set once per process): W threads
each fit the default model on 180 days of a real Upbit series (different series, as a daemon with
many markets would), FITS fits in all; the wall time gives fits per minute.

    .venv/bin/python bench/train_workers.py [--fits 6] [--configs 1x1,1x2,2x1,3x1,4x1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FORECASTER_SHARED_DATA", REPO.parent / "shared" / "data"))
SERIES = ["upbit_ETHKRW_1h_dev.csv", "upbit_BTCKRW_1h_dev.csv", "upbit_XRPKRW_1h_dev.csv",
          "upbit_SOLKRW_1h_dev.csv", "upbit_DOGEKRW_1h_dev.csv", "upbit_LINKKRW_1h_dev.csv"]


def child(workers: int, threads: int, fits: int) -> dict:
    """Runs in the subprocess: `fits` trainings, `workers` at a time, `threads` torch threads."""
    import threading

    import pandas as pd
    import torch

    from forecaster.config import ModelConfig
    from forecaster.train import train

    torch.set_num_threads(threads)
    frames = []
    for name in SERIES:
        df = pd.read_csv(DATA / name, parse_dates=["ts"]).set_index("ts")
        frames.append(df.loc["2023-06-01":"2023-11-27"].rename_axis("open_time"))  # 4320 hours
    todo = list(range(fits))
    guard = threading.Lock()
    seconds: list[float] = []

    def work():
        while True:
            with guard:
                if not todo:
                    return
                i = todo.pop()
            started = time.perf_counter()
            train(frames[i % len(frames)], ModelConfig(), "cpu")
            with guard:
                seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    threads_ = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    wall = time.perf_counter() - started
    import resource
    return {"workers": workers, "threads": threads, "fits": fits, "wall_s": round(wall, 1),
            "fits_per_min": round(60 * fits / wall, 2), "mean_fit_s": round(sum(seconds) / len(seconds), 1),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits", type=int, default=6)
    ap.add_argument("--configs", default="1x1,1x2,2x1,3x1,4x1", help="WORKERSxTHREADS, comma-separated")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        w, t = map(int, args.child.split("x"))
        print(json.dumps(child(w, t, args.fits)))
        return
    print(f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f}")
    for config in args.configs.split(","):
        w, t = map(int, config.split("x"))
        env = {**os.environ, "OMP_NUM_THREADS": str(t), "OMP_WAIT_POLICY": "PASSIVE",
               "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, __file__, "--child", config, "--fits", str(args.fits)], env=env,
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["load_after"] = round(os.getloadavg()[0], 2)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
