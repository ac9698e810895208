"""Replays rules for choosing the served band on one run of bench/quality.py: no refit, the same bands.

Every band source's band at every origin is in the run's --out file, and each fit's validation
scores per source and horizon in its .fits.json beside it; a rule that uses only those scores (the
ranking by validation interval score, a fixed set, a weighting) can be replayed exactly on the
origins each fit served. (The per-horizon "beats the mean beyond chance" override of the product's
rule needs the validation rows and is not replayed: it fired at 3 of 8,736 fit-horizons in the 1h
matrix.)

    .venv/bin/python bench/choice_rules.py runs/q1h.csv.gz
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bootstrap import day_sums, ratio_interval  # noqa: E402

SOURCES = ("volatility", "garch", "fhs", "empirical", "ewma")


def rules(scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Rule name -> {source: weight} for one fit, from its validation scores {source: (H,)}."""
    mean = {k: float(np.mean(scores[k])) for k in SOURCES if k in scores}
    ranked = sorted(mean, key=mean.get)
    out = {f"top{k}": {s: 1 / k for s in ranked[:k]} for k in (1, 2, 3, 4, 5)}
    out["volatility"] = {"volatility": 1.0}
    out["vol+garch"] = {"volatility": 0.5, "garch": 0.5}
    out["vol+garch+fhs"] = {"volatility": 1 / 3, "garch": 1 / 3, "fhs": 1 / 3}
    inv = {k: 1 / mean[k] ** 8 for k in ranked[:3]}  # sharper than 1/score: scores differ by a few %
    out["top3 weighted"] = {k: v / sum(inv.values()) for k, v in inv.items()}
    return out


def replay(scored: pd.DataFrame, fits: list[dict]) -> pd.DataFrame:
    """Adds ``<rule>_lower``/``<rule>_upper`` columns: each origin served by its fit's rule."""
    starts = pd.DatetimeIndex([pd.Timestamp(f["origin"]) for f in fits])
    which = np.searchsorted(starts, pd.DatetimeIndex(scored["origin_time"]), side="right") - 1
    close = scored["naive"].to_numpy()
    logs = {(s, side): np.log(scored[f"{s}_{side}"].to_numpy() / close) for s in SOURCES for side in ("lower", "upper")}
    out = {}
    for i, fit in enumerate(fits):
        rows = which == i
        for name, weights in rules({k: np.asarray(v) for k, v in fit["by_source"].items()}).items():
            for side in ("lower", "upper"):
                col = out.setdefault(f"{name}_{side}", np.full(len(scored), np.nan))
                col[rows] = close[rows] * np.exp(sum(w * logs[(s, side)][rows] for s, w in weights.items()))
    return scored.assign(**out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scored", help="bench/quality.py --out file; its .fits.json must be beside it")
    args = ap.parse_args(argv)
    scored = pd.read_csv(args.scored, parse_dates=["origin_time", "target_time"])
    fits = json.loads(Path(f"{args.scored}.fits.json").read_text())
    names = list(rules({k: np.ones(2) for k in SOURCES}))
    block = pd.Timedelta(days=1) if scored["origin_time"].diff().dropna().min() < pd.Timedelta(days=1) \
        else pd.Timedelta(days=7)
    all_sums, table = [], []
    for series, g in scored.groupby("series"):
        g = replay(g.reset_index(drop=True), fits[series])
        sums = day_sums(g, ("yhat", "empirical", *names), block)
        all_sums.append(sums)
        row = {"series": series, "served": ratio_interval(sums, "yhat", "empirical")["ratio"]}
        for n in names:
            row[n] = ratio_interval(sums, n, "empirical")["ratio"]
            inside = (g["actual"] >= g[f"{n}_lower"]) & (g["actual"] <= g[f"{n}_upper"])
            row[f"{n} cover"] = inside.groupby(g["horizon"]).mean().agg(["min", "max"]).round(3).tolist()
        table.append(row)
    t = pd.DataFrame(table).set_index("series")
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(t[["served", *names]].round(4).to_string())
        print(t[[f"{n} cover" for n in names]].to_string())
    for n in ("yhat", *names):
        r = ratio_interval(all_sums, n, "empirical")
        print(f"{n:>14}: mean over series {r['ratio']:.4f} [{r['low']:.4f}, {r['high']:.4f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
