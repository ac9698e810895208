"""What one change bought: two runs of bench/quality.py (--out files) compared on the same origins.

    .venv/bin/python bench/compare.py runs/with_lstm.csv.gz runs/without.csv.gz

Prints, per series and averaged over the series, the served band's interval score relative to the
empirical band's in each run and their difference (first minus second; below 0: the first run is
better), with a 90% paired block-bootstrap interval (the same days resampled in both runs).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bootstrap import day_sums, difference_interval, ratio_interval  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--block-days", type=float, default=1.0, help="7 for day candles")
    args = ap.parse_args(argv)
    runs = [pd.read_csv(p, parse_dates=["origin_time", "target_time"]) for p in (args.first, args.second)]
    keys = ["series", "origin_time", "horizon"]
    common = runs[0][keys].merge(runs[1][keys], on=keys)
    runs = [r.merge(common, on=keys) for r in runs]
    block = pd.Timedelta(days=args.block_days)
    sums = [{n: day_sums(g, ("yhat", "empirical"), block) for n, g in r.groupby("series")} for r in runs]
    for n in sorted(sums[0]):
        a, b = ratio_interval(sums[0][n], "yhat", "empirical"), ratio_interval(sums[1][n], "yhat", "empirical")
        d = difference_interval([sums[0][n]], [sums[1][n]], "yhat", "empirical")
        print(f"{n:<16} {a['ratio']:.4f} vs {b['ratio']:.4f}: {d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")
    series = sorted(sums[0])
    d = difference_interval([sums[0][n] for n in series], [sums[1][n] for n in series], "yhat", "empirical")
    a = ratio_interval([sums[0][n] for n in series], "yhat", "empirical")
    b = ratio_interval([sums[1][n] for n in series], "yhat", "empirical")
    print(f"mean of {len(series)} series: {a['ratio']:.4f} vs {b['ratio']:.4f}: {d['difference']:+.4f} "
          f"[{d['low']:+.4f}, {d['high']:+.4f}] (90% paired block bootstrap over {d['blocks']} blocks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
