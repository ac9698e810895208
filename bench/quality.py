"""Band quality on the development series: the walk-forward of the contract (an origin every step over
the last DAYS days, weekly refits), the served band next to naive, the volatility model alone and
every yardstick (empirical, EWMA, FHS, seasonal GARCH-t FHS), with block-bootstrap intervals.

    .venv/bin/python bench/quality.py [--interval 1h|4h|1d] [--series upbit_SOLKRW ...] [--days N]
        [--workers 2] [--learned none|lstm|...: forecaster/learned.py] [--out scored.csv.gz]

Interval scores are relative to the empirical band's at the same origins (lower is better). 4h and
1d candles are made from the hourly files here only (bench/intervals.py). Needs ../shared/data
(FORECASTER_SHARED_DATA overrides the folder). Two --out files compare with bench/compare.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_data import shared_data  # noqa: E402
from bench.bootstrap import day_sums, ratio_interval  # noqa: E402
from forecaster import learned  # noqa: E402

SERIES = ("binance_ETHUSDT", "upbit_ETHKRW", "upbit_BTCKRW", "upbit_XRPKRW", "upbit_SOLKRW",
          "upbit_DOGEKRW", "upbit_LINKKRW")
SHORT_SERIES = ("binance_ETHUSDT", "upbit_ETHKRW", "upbit_BTCKRW")  # 4h and 1d
YARDSTICKS = ("empirical", "ewma", "fhs", "garch")
BANDS = ("yhat", "volatility", *YARDSTICKS)


def load_series(name: str, interval: str) -> pd.DataFrame:
    from forecaster.frames import candles_frame

    frame = candles_frame(pd.read_csv(shared_data() / f"{name}_1h_dev.csv"))
    if interval != "1h":
        from bench.intervals import resample

        frame = resample(frame, interval)
    return frame


def run_series(name: str, args) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    from forecaster.backtest import history_steps, walk_forward
    from forecaster.config import ModelConfig
    from forecaster.defaults import backtest_defaults
    from forecaster.errors import NotEnoughHistory

    cfg = ModelConfig.for_interval(args.interval, learned=args.learned)
    d = backtest_defaults(args.interval)
    days = args.days or (360 if args.interval in ("1h", "1d") else 180)
    frame = load_series(name, args.interval)
    first = frame.index[-1] - (days * cfg.step.steps_per_day + cfg.horizon
                               + history_steps(cfg, d["train_steps"]) + 24) * cfg.step.step
    frame = frame.loc[first:]
    started = time.perf_counter()
    try:
        res = walk_forward(frame, days=days, step=1, retrain_every=d["retrain_every"], train_steps=d["train_steps"],
                           horizon=cfg.horizon, config=cfg)
    except NotEnoughHistory as exc:  # a series too short for this interval's defaults: say so, go on
        return {"name": name, "error": f"{name} as {args.interval} candles over {days} days: {exc}"}
    return {"name": name, "scored": res.scored, "wall": time.perf_counter() - started, "fits": len(res.fits),
            "fit_seconds": [f["train_seconds"] for f in res.fits],
            "sources": [f["metrics"].band_source for f in res.fits],
            "val_scores": [{"fit_index": f["fit_index"], "origin": str(f["origin"]),
                            "by_source": f["metrics"].val_interval_score_by_source} for f in res.fits],
            "block": cfg.step.bootstrap_block(cfg.horizon) * cfg.step.step}


def _row_scores(g: pd.DataFrame, band: str) -> np.ndarray:
    lo, up, y = g[f"{band}_lower"].to_numpy(), g[f"{band}_upper"].to_numpy(), g["actual"].to_numpy()
    return (up - lo) + 10.0 * (np.maximum(lo - y, 0) + np.maximum(y - up, 0))


def per_horizon(scored: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for h, g in scored.groupby("horizon"):
        s = {b: _row_scores(g, b).mean() for b in BANDS}
        row = {"h": h, "served": s["yhat"] / s["empirical"], "vol": s["volatility"] / s["empirical"],
               **{y: s[y] / s["empirical"] for y in YARDSTICKS[1:]},
               "cover": ((g["actual"] >= g["yhat_lower"]) & (g["actual"] <= g["yhat_upper"])).mean(),
               "rmae": (g["yhat"] - g["actual"]).abs().mean() / (g["naive"] - g["actual"]).abs().mean()}
        row["best_yard"] = min(1.0, *(row[y] for y in YARDSTICKS[1:]))
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(r: dict, table: pd.DataFrame) -> tuple[str, dict]:
    sums = day_sums(r["scored"], BANDS, r["block"])
    served = ratio_interval(sums, "yhat", "empirical")
    vs_garch = ratio_interval(sums, "yhat", "garch")
    # per horizon: the served band against the best yardstick there (lowest mean over the span)
    worse, better = [], []
    for h in range(sums["yhat"].shape[1]):
        best = min(YARDSTICKS, key=lambda y: sums[y][:, h].sum())
        iv = ratio_interval({k: v[:, [h]] for k, v in sums.items()}, "yhat", best)
        if iv["low"] > 1:
            worse.append(f"{h + 1}({best} {iv['ratio']:.3f})")
        if iv["high"] < 1:
            better.append(h + 1)
    line = (f"{r['name']:<16} served/emp {served['ratio']:.3f} [{served['low']:.3f}, {served['high']:.3f}]  "
            f"vol {table['vol'].mean():.3f}  garch {table['garch'].mean():.3f}  fhs {table['fhs'].mean():.3f}  "
            f"ewma {table['ewma'].mean():.3f}  served/garch {vs_garch['ratio']:.3f} [{vs_garch['low']:.3f}, "
            f"{vs_garch['high']:.3f}]  cover {table['cover'].min():.3f}-{table['cover'].max():.3f}  "
            f"rMAE max {table['rmae'].max():.4f}  worse than best yardstick beyond chance at h: {worse or 'none'}; "
            f"better at {len(better)} of {len(table)}  fits {r['fits']} ({np.mean(r['fit_seconds']):.1f}s each)  "
            f"wall {r['wall']:.0f}s")
    return line, sums


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interval", default="1h", choices=["1h", "4h", "1d"])
    ap.add_argument("--days", type=int, default=None, help="default: 360 (1h, 1d) or 180 (4h)")
    ap.add_argument("--series", nargs="*", default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--learned", default="none", choices=learned.names())
    ap.add_argument("--out", default=None, help="write the scored rows of every series to this CSV")
    args = ap.parse_args(argv)
    args.series = args.series or list(SERIES if args.interval == "1h" else SHORT_SERIES)
    missing = [n for n in args.series if not (shared_data() / f"{n}_1h_dev.csv").is_file()]
    if missing:
        print(f"bench/quality.py: no {missing[0]}_1h_dev.csv in {shared_data()}: this bench needs the full "
              "development series (../shared/data beside the repository, or FORECASTER_SHARED_DATA=DIR); "
              "tests/data/README.md gives their public sources", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(run_series, args.series, [args] * len(args.series)))
    total = time.perf_counter() - started
    for r in results:
        if "error" in r:
            print(f"skipped: {r['error']}")
    results = [r for r in results if "error" not in r]
    lines, tables, all_sums = [], [], []
    for r in results:
        t = per_horizon(r["scored"])
        line, sums = summarise(r, t)
        lines.append(line)
        all_sums.append(sums)
        tables.append(t.assign(series=r["name"]))
    table = pd.concat(tables, ignore_index=True)
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print("\n".join(lines))
    means = table.groupby("series")[["served", "vol", "garch", "fhs", "ewma", "best_yard"]].mean().mean()
    pooled = ratio_interval(all_sums, "yhat", "empirical")
    print(f"{args.interval}, learned={args.learned}: mean served/emp over horizons, averaged "
          f"over {len(results)} series: {pooled['ratio']:.4f} [{pooled['low']:.4f}, {pooled['high']:.4f}] "
          f"(vol alone {means['vol']:.4f}, garch {means['garch']:.4f}, fhs {means['fhs']:.4f}, "
          f"ewma {means['ewma']:.4f}, best yardstick per horizon {means['best_yard']:.4f}); wall {total / 60:.1f} min")
    for r in results:
        print(f"{r['name']} served by fit: " + " | ".join(sorted(set(r["sources"]))))
    if args.out:
        pd.concat([r["scored"].assign(series=r["name"]) for r in results]).to_csv(args.out, index=False)
        # each fit's validation scores per band and horizon: other choice rules replay from these
        Path(f"{args.out}.fits.json").write_text(json.dumps({r["name"]: r["val_scores"] for r in results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
