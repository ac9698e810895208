"""Accuracy measures: pure functions on arrays and frames."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .frames import hourly_grid


def mae(y_pred, y_true) -> float:
    return float(np.mean(np.abs(np.asarray(y_pred, float) - np.asarray(y_true, float))))


def rmae(y_pred, y_true, y_naive) -> float:
    """MAE of the model over MAE of the naive forecast on the same points."""
    return mae(y_pred, y_true) / mae(y_naive, y_true)


def coverage(lower, upper, y) -> float:
    y = np.asarray(y, float)
    return float(np.mean((y >= np.asarray(lower, float)) & (y <= np.asarray(upper, float))))


def interval_score(lower, upper, y, alpha: float = 0.2) -> float:
    """Mean interval score: width + (2/alpha) * distance of a miss (lower is better)."""
    lower, upper, y = (np.asarray(a, float) for a in (lower, upper, y))
    score = (upper - lower) + (2 / alpha) * (np.maximum(lower - y, 0) + np.maximum(y - upper, 0))
    return float(np.mean(score))


def empirical_band(frame_train: pd.DataFrame, origin_close, horizons, q=(0.1, 0.9)):
    """The plain band: origin close times the q-quantiles of past h-hour returns (pairs of
    existing candles h hours apart) in ``frame_train``. -> (lower, upper), each (n, len(h))."""
    close = hourly_grid(frame_train)["close"].to_numpy()
    logc = np.log(close)
    lo, hi = [], []
    for h in horizons:
        r = logc[h:] - logc[:-h]
        r = r[np.isfinite(r)]
        a, b = np.quantile(r, q) if r.size else (np.nan, np.nan)
        lo.append(a)
        hi.append(b)
    base = np.atleast_1d(np.asarray(origin_close, float))[:, None]
    return base * np.exp(np.asarray(lo))[None, :], base * np.exp(np.asarray(hi))[None, :]


def attach_actuals(pred: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Forecast rows (origin_time, target_time, ...) with ``actual`` (the target's close) and
    ``naive`` (the origin's close); rows whose target candle is missing are dropped."""
    close = frame["close"]
    out = pred.copy()
    out["actual"] = close.reindex(pd.DatetimeIndex(out["target_time"])).to_numpy()
    out["naive"] = close.reindex(pd.DatetimeIndex(out["origin_time"])).to_numpy()
    return out[out["actual"].notna()].reset_index(drop=True)


def summary(scored: pd.DataFrame) -> dict:
    """Overall figures of scored rows (see attach_actuals)."""
    y = scored["actual"]
    res = {"n": int(len(scored)),
           "mae": mae(scored["yhat"], y), "naive_mae": mae(scored["naive"], y),
           "coverage": coverage(scored["yhat_lower"], scored["yhat_upper"], y),
           "interval_score": interval_score(scored["yhat_lower"], scored["yhat_upper"], y)}
    res["rmae"] = res["mae"] / res["naive_mae"] if res["naive_mae"] else float("nan")
    if "emp_lower" in scored:
        res["empirical_interval_score"] = interval_score(scored["emp_lower"], scored["emp_upper"], y)
        res["empirical_coverage"] = coverage(scored["emp_lower"], scored["emp_upper"], y)
    return res


def per_horizon_table(scored: pd.DataFrame) -> pd.DataFrame:
    """One row per horizon: horizon, n, mae, naive_mae, rmae, coverage, interval_score and,
    when the scored rows carry emp_lower/emp_upper, empirical_interval_score too."""
    rows = [{"horizon": int(h), **summary(g)} for h, g in scored.groupby("horizon")]
    cols = ["horizon", "n", "mae", "naive_mae", "rmae", "coverage", "interval_score",
            "empirical_interval_score", "empirical_coverage"]
    table = pd.DataFrame(rows)
    return table[[c for c in cols if c in table.columns]]
