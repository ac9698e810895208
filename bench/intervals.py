"""The walk-forward backtest of 4h and 1d markets, next to naive and the model-free bands, with each
interval's defaults (forecaster/defaults.py: 1d forecasts 7 days ahead over the last 360 days with a
weekly refit; 4h forecasts 18 steps = 3 days ahead over the last 180 days).

    .venv/bin/python bench/intervals.py [--intervals 4h 1d] [--csv binance_ETHUSDT_1h_dev.csv]

The development data set holds hourly candles only. Here, and only here and in the tests, 4h and
day candles are made from them (UTC boundaries, as Binance's own 4h and 1d klines): an evaluation
of the forecaster in those steps, not what the service stores (it stores each exchange's native
candles of each interval and never resamples).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_data import require_csv, shared_csv  # noqa: E402

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
RULES = {"4h": "4h", "1d": "24h"}


def resample(hourly: pd.DataFrame, interval: str, min_share: float = 0.75) -> pd.DataFrame:
    """4h or day candles of the hours that exist; one with fewer than ``min_share`` of its hours is
    left out (a gap). Not only whole ones: Upbit has no candle for an hour without a trade (XRP,
    DOGE at night), so whole days alone would leave its day series full of holes its own day
    candles do not have."""
    grouped = hourly.resample(RULES[interval], label="left", closed="left")
    out = grouped.agg(AGG)
    hours = grouped["close"].count()
    per = {"4h": 4, "1d": 24}[interval]
    return out[hours >= min_share * per]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=str(shared_csv()))
    ap.add_argument("--intervals", nargs="*", default=["4h", "1d"])
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(2)
    from forecaster.backtest import walk_forward
    from forecaster.config import ModelConfig
    from forecaster.defaults import backtest_defaults
    from forecaster.frames import candles_frame
    from jobs.backtest import BacktestOutcome

    hourly = candles_frame(pd.read_csv(require_csv(args.csv, "--csv ")))
    for interval in args.intervals:
        frame = resample(hourly, interval)
        d = backtest_defaults(interval)
        started = time.perf_counter()
        res = walk_forward(frame, days=d["days"], step=1, retrain_every=d["retrain_every"],
                           train_steps=d["train_steps"], horizon=d["horizon"], config=ModelConfig.for_interval(interval))
        wall = time.perf_counter() - started
        print(f"\n{Path(args.csv).name} as {interval} candles ({len(frame)} candles, {frame.index[0]:%Y-%m-%d} .. "
              f"{frame.index[-1]:%Y-%m-%d}); defaults {d}; wall {wall:.0f}s")
        print(BacktestOutcome(f"{Path(args.csv).stem}@{interval}", res.table, res.summary).report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
