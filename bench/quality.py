"""Band quality on every development series: the walk-forward of the contract with an origin every
hour over the last DAYS days, next to naive and the model-free yardsticks, with a block-bootstrap
interval. Prints one table per horizon and series, then one summary line per series.

    .venv/bin/python bench/quality.py [--days 360] [--series upbit_SOLKRW ...] [--until TS]
        [--workers 2] [--train-hours 4320] [--retrain-every 168] [--out results.csv]

Needs the real hourly files of ../shared/data (FORECASTER_SHARED_DATA overrides the folder).
Interval scores are relative to the empirical band's at the same origins (lower is better).
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_data import shared_data  # noqa: E402

SERIES = ("binance_ETHUSDT", "upbit_ETHKRW", "upbit_BTCKRW", "upbit_XRPKRW", "upbit_SOLKRW",
          "upbit_DOGEKRW", "upbit_LINKKRW")
YARDSTICKS = ("empirical", "ewma", "fhs")


def _volatility_only(frame, result, horizon):
    """The volatility model alone (no LSTM, no choice per horizon), refit at every fit origin
    exactly like the model: what it adds is what the LSTM and the choice add on top."""
    from forecaster import windows
    from forecaster.config import ModelConfig
    from forecaster.frames import step_grid
    from forecaster.volatility import fit_volatility
    cfg = ModelConfig()
    hour = pd.Timedelta(hours=1)
    rows = []
    for fit in result.fits:
        origins = pd.DatetimeIndex(result.predictions.loc[result.predictions["fit_index"] == fit["fit_index"],
                                                          "origin_time"].unique())
        span = frame.loc[fit["origin"] - (cfg.volatility_steps - 1) * hour:fit["origin"]]
        s = windows.series_from_grid(step_grid(span))
        vol = fit_volatility(s.log_close, s.log_range, s.times, horizon)
        grid = step_grid(frame.loc[origins.min() - 800 * hour:origins.max()])
        g = windows.series_from_grid(grid, fill=True)
        pos = grid.index.get_indexer(origins)
        band = vol.band(g.log_close, g.log_range, g.times, pos)
        close = g.close[pos][:, None]
        rows.append(pd.DataFrame({"origin_time": np.repeat(origins, horizon),
                                  "horizon": np.tile(np.arange(1, horizon + 1), len(origins)),
                                  "vol_lower": (close * np.exp(band[..., 0])).ravel(),
                                  "vol_upper": (close * np.exp(band[..., 1])).ravel()}))
    return pd.concat(rows, ignore_index=True)


def run_series(name: str, args) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    from forecaster import metrics
    from forecaster.backtest import history_steps, walk_forward
    from forecaster.config import ModelConfig
    from forecaster.frames import candles_frame

    cfg = ModelConfig()
    frame = candles_frame(pd.read_csv(shared_data() / f"{name}_1h_dev.csv"))
    if args.until:
        frame = frame.loc[:pd.Timestamp(args.until, tz="UTC")]
    first = frame.index[-1] - (args.days * 24 + 24 + history_steps(cfg, args.train_hours)) * pd.Timedelta(hours=1)
    frame = frame.loc[first:]
    started = time.perf_counter()
    res = walk_forward(frame, days=args.days, step=1, retrain_every=args.retrain_every,
                       train_steps=args.train_hours, horizon=24, config=cfg)
    wall = time.perf_counter() - started
    from forecaster.backtest import yardstick_rows
    free = yardstick_rows(frame, pd.DatetimeIndex(res.predictions["origin_time"].unique()), 24)
    scored = metrics.attach_actuals(res.predictions.merge(free, on=["origin_time", "horizon"]), frame)
    scored = scored.merge(_volatility_only(frame, res, 24), on=["origin_time", "horizon"])
    return {"name": name, "scored": scored, "wall": wall, "fits": len(res.fits),
            "fit_seconds": [f["train_seconds"] for f in res.fits],
            "sources": [f["metrics"]["band_source"] for f in res.fits]}


def _is(g, lo, up):
    from forecaster.metrics import interval_score
    return interval_score(g[lo], g[up], g["actual"])


def per_horizon(scored: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for h, g in scored.groupby("horizon"):
        emp = _is(g, "empirical_lower", "empirical_upper")
        row = {"h": h, "model": _is(g, "yhat_lower", "yhat_upper") / emp,
               "vol": _is(g, "vol_lower", "vol_upper") / emp,
               **{y: _is(g, f"{y}_lower", f"{y}_upper") / emp for y in YARDSTICKS[1:]},
               "cover": ((g["actual"] >= g["yhat_lower"]) & (g["actual"] <= g["yhat_upper"])).mean(),
               "rmae": (g["yhat"] - g["actual"]).abs().mean() / (g["naive"] - g["actual"]).abs().mean()}
        row["best_free"] = min(1.0, row["ewma"], row["fhs"])
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=360)
    ap.add_argument("--series", nargs="*", default=list(SERIES))
    ap.add_argument("--until", default=None, help="last candle used, e.g. 2022-12-31T23:00Z")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--train-hours", type=int, default=4320)
    ap.add_argument("--retrain-every", type=int, default=168)
    ap.add_argument("--out", default=None, help="write the scored rows of every series to this CSV")
    args = ap.parse_args(argv)
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
    from forecaster.metrics import bootstrap_ratio
    lines, tables = [], []
    for r in results:
        t = per_horizon(r["scored"])
        t.insert(0, "series", r["name"])
        tables.append(t)
        boot = bootstrap_ratio(r["scored"], "empirical")
        vol = bootstrap_ratio(r["scored"].assign(yhat_lower=r["scored"]["vol_lower"],
                                                 yhat_upper=r["scored"]["vol_upper"]), "empirical")
        worse = t[t["model"] > t["best_free"]]["h"].tolist()
        lines.append(f"{r['name']:<16} IS/emp {boot['ratio']:.3f} [{boot['low']:.3f}, {boot['high']:.3f}]  "
                     f"vol-only {vol['ratio']:.3f}  best-free {t['best_free'].mean():.3f}  "
                     f"cover {t['cover'].min():.3f}-{t['cover'].max():.3f}  rMAE max {t['rmae'].max():.4f}  "
                     f"h worse than best free: {worse or 'none'}  fits {r['fits']} "
                     f"({np.mean(r['fit_seconds']):.1f}s each)  wall {r['wall']:.0f}s")
    table = pd.concat(tables, ignore_index=True)
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print("\n".join(lines))
    means = table.groupby("series")["model"].mean()
    print(f"mean IS/emp over horizons, averaged over {len(means)} series: {means.mean():.4f} "
          f"(vol-only {table.groupby('series')['vol'].mean().mean():.4f}, "
          f"best free {table.groupby('series')['best_free'].mean().mean():.4f}); wall {total / 60:.1f} min")
    for r in results:
        print(f"{r['name']} band sources by fit: " + " | ".join(sorted(set(r['sources']))))
    if args.out:
        pd.concat([r["scored"].assign(series=r["name"]) for r in results]).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
