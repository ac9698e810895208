"""Block-bootstrap intervals of interval-score ratios, for one series or several at once.

Neighbouring origins share most of their targets, so whole blocks of time (a day of hourly origins,
a week of daily ones) are resampled, never single origins. Several series are resampled with the
same block indices (their spans cover the same days), so an average over series keeps the
dependence between markets that move together.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

ALPHA = 0.2


def day_sums(scored: pd.DataFrame, bands, block: pd.Timedelta) -> dict[str, np.ndarray]:
    """{band: (blocks, H) sums of its interval scores per block of origins and horizon}; ``scored``
    has origin_time, horizon, actual and ``<band>_lower``/``<band>_upper`` columns."""
    times = pd.DatetimeIndex(scored["origin_time"])
    key = pd.DataFrame({"block": (times - times.min()) // block, "horizon": scored["horizon"].to_numpy()})
    y = scored["actual"].to_numpy()
    out = {}
    for band in bands:
        lo, up = scored[f"{band}_lower"].to_numpy(), scored[f"{band}_upper"].to_numpy()
        key["s"] = (up - lo) + (2 / ALPHA) * (np.maximum(lo - y, 0) + np.maximum(y - up, 0))
        out[band] = key.groupby(["block", "horizon"])["s"].sum().unstack("horizon", fill_value=0.0).to_numpy()
    return out


def _ratio(sums, idx, a: str, b: str) -> np.ndarray:
    """Mean over horizons of sum(a) / sum(b) over the resampled blocks, averaged over series."""
    per_series = [(s[a][idx].sum(axis=-2) / s[b][idx].sum(axis=-2)).mean(axis=-1) for s in sums]
    return np.mean(per_series, axis=0)


def ratio_interval(sums, a: str, b: str, *, resamples: int = 2000, level: float = 0.9, seed: int = 0) -> dict:
    """The mean over horizons of band ``a``'s interval score over band ``b``'s, with a ``level``
    block-bootstrap interval. ``sums``: one day_sums dict, or a list of them (one per series; the
    ratio is then their average and blocks are drawn alike for all)."""
    sums = [sums] if isinstance(sums, dict) else list(sums)
    n = min(len(s[a]) for s in sums)
    sums = [{k: v[-n:] for k, v in s.items()} for s in sums]  # the latest n blocks of each
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    boot = _ratio(sums, idx, a, b)
    tail = (1 - level) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return {"ratio": float(_ratio(sums, np.arange(n), a, b)), "low": float(low), "high": float(high), "blocks": n}


def difference_interval(sums_a, sums_b, band: str, ref: str, **kw) -> dict:
    """(ratio of ``band`` to ``ref`` in run a) minus (the same in run b), paired by block: what one
    change of the model bought, with its bootstrap interval. sums_a, sums_b: lists of day_sums."""
    rng = np.random.default_rng(kw.get("seed", 0))
    n = min(len(s[band]) for s in [*sums_a, *sums_b])
    trim = lambda ss: [{k: v[-n:] for k, v in s.items()} for s in ss]  # noqa: E731
    sums_a, sums_b = trim(sums_a), trim(sums_b)
    idx = rng.integers(0, n, size=(kw.get("resamples", 2000), n))
    boot = _ratio(sums_a, idx, band, ref) - _ratio(sums_b, idx, band, ref)
    tail = (1 - kw.get("level", 0.9)) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    point = _ratio(sums_a, np.arange(n), band, ref) - _ratio(sums_b, np.arange(n), band, ref)
    return {"difference": float(point), "low": float(low), "high": float(high), "blocks": n}
