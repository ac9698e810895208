"""Accuracy measures: pure functions on arrays and frames."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .sources import YARDSTICKS


def mae(y_pred, y_true) -> float:
    return float(np.mean(np.abs(np.asarray(y_pred, float) - np.asarray(y_true, float))))


def coverage(lower, upper, y) -> float:
    y = np.asarray(y, float)
    return float(np.mean((y >= np.asarray(lower, float)) & (y <= np.asarray(upper, float))))


def interval_score(lower, upper, y, alpha: float = 0.2) -> float:
    """Mean interval score: width + (2/alpha) * distance of a miss (lower is better)."""
    lower, upper, y = (np.asarray(a, float) for a in (lower, upper, y))
    score = (upper - lower) + (2 / alpha) * (np.maximum(lower - y, 0) + np.maximum(y - upper, 0))
    return float(np.mean(score))


def attach_actuals(pred: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Forecast rows (origin_time, target_time, ...) with ``actual`` (the target's close) and
    ``naive`` (the origin's close); rows whose target candle is missing are dropped."""
    close = frame["close"]
    out = pred.copy()
    out["actual"] = close.reindex(pd.DatetimeIndex(out["target_time"])).to_numpy()
    out["naive"] = close.reindex(pd.DatetimeIndex(out["origin_time"])).to_numpy()
    return out[out["actual"].notna()].reset_index(drop=True)




def summary(scored: pd.DataFrame) -> dict:
    """Overall figures of scored rows (see attach_actuals); with the yardsticks' columns
    (``<name>_lower``/``<name>_upper``), their interval score and coverage too."""
    y = scored["actual"]
    res = {"n": int(len(scored)),
           "mae": mae(scored["yhat"], y), "naive_mae": mae(scored["naive"], y),
           "coverage": coverage(scored["yhat_lower"], scored["yhat_upper"], y),
           "interval_score": interval_score(scored["yhat_lower"], scored["yhat_upper"], y)}
    res["rmae"] = res["mae"] / res["naive_mae"] if res["naive_mae"] else float("nan")
    for name in YARDSTICKS:
        if f"{name}_lower" in scored:
            lo, up = scored[f"{name}_lower"], scored[f"{name}_upper"]
            res[f"{name}_interval_score"] = interval_score(lo, up, y)
            res[f"{name}_coverage"] = coverage(lo, up, y)
    free = [res[f"{n}_interval_score"] for n in YARDSTICKS if f"{n}_interval_score" in res]
    if free:
        res["best_free_interval_score"] = min(free)
    return res


def per_horizon_table(scored: pd.DataFrame) -> pd.DataFrame:
    """One row per horizon: horizon, n, mae, naive_mae, rmae, coverage, interval_score and, when
    the scored rows carry the yardsticks' bands, each one's interval score and coverage and the
    best of them."""
    return pd.DataFrame([{"horizon": int(h), **summary(g)} for h, g in scored.groupby("horizon")])


def _row_scores(scored: pd.DataFrame, lower: str, upper: str, alpha: float = 0.2) -> np.ndarray:
    lo, up, y = (scored[c].to_numpy(float) for c in (lower, upper, "actual"))
    return (up - lo) + (2 / alpha) * (np.maximum(lo - y, 0) + np.maximum(y - up, 0))


def bootstrap_ratio(scored: pd.DataFrame, reference: str = "empirical", *,
                    block: pd.Timedelta = pd.Timedelta(days=1), resamples: int = 2000, level: float = 0.9,
                    seed: int = 0) -> dict:
    """The mean over horizons of interval score ratios (model / ``reference`` band), with a
    block-bootstrap interval: neighbouring origins share most of their targets, so the origins of
    whole blocks of time (a day for hourly candles) are resampled, not single origins.
    -> {"ratio", "low", "high", "blocks", "block"}"""
    if f"{reference}_lower" not in scored or scored.empty:
        return {}
    times = pd.DatetimeIndex(scored["origin_time"])
    frame = pd.DataFrame({"day": (times - times.min()) // block,
                          "horizon": scored["horizon"].to_numpy(),
                          "model": _row_scores(scored, "yhat_lower", "yhat_upper"),
                          "ref": _row_scores(scored, f"{reference}_lower", f"{reference}_upper")})
    sums = frame.groupby(["day", "horizon"])[["model", "ref"]].sum().unstack("horizon", fill_value=0.0)
    model, ref = sums["model"].to_numpy(), sums["ref"].to_numpy()  # (days, H)
    point = float(np.mean(model.sum(0) / ref.sum(0)))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(model), size=(resamples, len(model)))
    ratios = (model[idx].sum(axis=1) / ref[idx].sum(axis=1)).mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail])
    return {"ratio": point, "low": float(low), "high": float(high), "blocks": int(len(model)),
            "block": str(block)}
