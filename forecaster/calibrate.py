"""Choices made on the validation slice only: median shrinkage, conformal band widths, and which
band to serve at each horizon.

Direction is close to unpredictable at these horizons, so a raw median adds noise. Per horizon
we pick ``shrink`` in [0, 1] (0 = the naive forecast) minimising the MAE of the price on the
validation slice, and keep it only where that gain is statistically clear. The LSTM's band is
then recalibrated (split-conformal, one factor per side and horizon) so that 10% of validation
actuals fall below it and 10% above it. Finally every candidate band (sources.py, and the LSTM's
when it is trained) is scored out of sample on the same validation origins, and each horizon serves
the mean of the volatility model's and GARCH's bands unless one band beats it beyond chance there
(``choose_served``).
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np

from .sources import DEFAULT_MEAN, SEPARATOR, combine

FAMILY_ALPHA = 0.05  # chance, over all horizons together, of keeping a median without real skill


def choose_shrink(median: np.ndarray, actual: np.ndarray, steps: int, block: int = 24,
                  z: float | None = None) -> np.ndarray:
    """Per-horizon factor s in {0, 1/steps, ..., 1} for the median, chosen on validation.

    median, actual: (n, H) log-returns from the origin of consecutive hourly origins (errors
    are taken relative to the origin's close, so every origin weighs the same). For each
    horizon the best s is kept only if its gain over the naive forecast is significant: mean
    loss difference + ``z`` standard errors < 0, with standard errors from means over blocks of
    ``block`` origins (neighbouring origins share most of their targets). Otherwise s = 0 (the
    naive forecast): a median without demonstrated skill only adds noise. -> (H,)

    H horizons are H tests: by default ``z`` is Bonferroni's one-sided bound for a family-wise
    error of FAMILY_ALPHA (2.86 for H = 24), so that chance alone rarely lets one horizon through.
    """
    if z is None:
        z = NormalDist().inv_cdf(1 - FAMILY_ALPHA / median.shape[1])
    grid = np.linspace(0.0, 1.0, steps + 1)  # (S,)
    truth = np.exp(actual)  # (n, H)
    loss = np.abs(np.exp(grid[:, None, None] * median[None]) - truth[None])  # (S, n, H)
    best = np.argmin(loss.mean(axis=1), axis=0)  # (H,)
    diff = loss[best, :, np.arange(loss.shape[2])] - loss[0].T  # (H, n): model minus naive
    n_blocks = diff.shape[1] // block
    if n_blocks < 2:
        return np.zeros(median.shape[1])
    means = diff[:, : n_blocks * block].reshape(len(best), n_blocks, block).mean(axis=2)
    se = means.std(axis=1, ddof=1) / np.sqrt(n_blocks)
    significant = means.mean(axis=1) + z * se < 0
    return np.where(significant, grid[best], 0.0)


def _pooled(values: np.ndarray, h: int, width: int = 1) -> np.ndarray:
    """Columns h-width..h+width of (n, H) values, flattened (steadier than one column)."""
    lo, hi = max(0, h - width), min(values.shape[1], h + width + 1)
    return values[:, lo:hi].ravel()


def conformal_factors(center: np.ndarray, gap_lo: np.ndarray, gap_up: np.ndarray,
                      actual: np.ndarray, miss: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Factors k_lo, k_up (H,) so that ``center - k_lo * gap_lo`` and ``center + k_up * gap_up``
    each miss ``miss`` of the validation actuals (split-conformal, pooled over h-1..h+1).

    center: the (shrunk) median; gap_lo, gap_up: the model's median-to-quantile offsets
    (positive); actual: the truth; all (n, H) in the same units.
    """
    score_lo = (center - actual) / np.maximum(gap_lo, 1e-6)  # > k_lo <=> actual below band
    score_up = (actual - center) / np.maximum(gap_up, 1e-6)
    horizon = center.shape[1]
    k_lo, k_up = np.empty(horizon), np.empty(horizon)
    for h in range(horizon):
        a, b = _pooled(score_lo, h), _pooled(score_up, h)
        level = min(1.0, (1 - miss) * (1 + 1 / max(len(a), 1)))
        k_lo[h] = max(np.quantile(a, level), 0.0)
        k_up[h] = max(np.quantile(b, level), 0.0)
    return k_lo, k_up


def apply(z: np.ndarray, shrink: np.ndarray, k_lo: np.ndarray, k_up: np.ndarray):
    """Raw model quantiles z (n, H, 3) -> calibrated (lower, center, upper), each (n, H)."""
    lower, med, upper = z[..., 0], z[..., 1], z[..., 2]
    center = shrink[None, :] * med
    return center - k_lo[None, :] * (med - lower), center, center + k_up[None, :] * (upper - med)


ALPHA = 0.2  # the band is the central 1 - ALPHA = 80%


def relative_interval_score(band: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Interval score of bands in units of the origin's close: band (n, H, 2) and actual (n, H)
    are log returns from the origin; a price band is the close times exp(band). -> (n, H)"""
    lo, up, y = np.exp(band[..., 0]), np.exp(band[..., 1]), np.exp(actual)
    return (up - lo) + (2 / ALPHA) * (np.maximum(lo - y, 0) + np.maximum(y - up, 0))


def cross_fitted(center: np.ndarray, gap_lo: np.ndarray, gap_up: np.ndarray,
                 actual: np.ndarray) -> np.ndarray:
    """The conformal band scored honestly on its own calibration slice: factors from the first
    half of the origins applied to the second half and vice versa (a band calibrated on the very
    origins it is scored on looks better than it is). Arguments as ``conformal_factors``, rows in
    time order. -> (n, H, 2) lower and upper."""
    n = len(center)
    halves = (slice(0, n // 2), slice(n // 2, n))
    out = np.empty(center.shape + (2,))
    for fit, use in (halves, halves[::-1]):
        k_lo, k_up = conformal_factors(center[fit], gap_lo[fit], gap_up[fit], actual[fit])
        out[use, :, 0] = center[use] - k_lo * gap_lo[use]
        out[use, :, 1] = center[use] + k_up * gap_up[use]
    return out


def usable_rows(candidates: dict[str, np.ndarray], actual: np.ndarray) -> np.ndarray:
    """(n, H) True where the truth and every candidate band exist: bands are compared on the
    same origins only (a yardstick has no band before its window of history is there)."""
    ok = np.isfinite(actual)
    for band in candidates.values():
        ok &= np.isfinite(band).all(axis=-1)
    return ok


def _block_means(diff: np.ndarray, ok: np.ndarray, block: int) -> np.ndarray:
    """Means of ``diff`` over consecutive blocks of ``block`` rows (rows where ``ok`` is False count
    as missing): neighbouring origins share most of their targets, so blocks, not rows, are the
    independent-ish units of a standard error."""
    n_blocks = len(diff) // block
    d = diff[: n_blocks * block].reshape(n_blocks, block)
    w = ok[: n_blocks * block].reshape(n_blocks, block).sum(axis=1)
    return d.sum(axis=1) / np.maximum(w, 1)


def lower_beyond_chance(a: np.ndarray, b: np.ndarray, ok: np.ndarray, z: float, block: int) -> bool:
    """Is the mean of per-row scores ``a`` lower than ``b``'s by more than ``z`` standard errors?"""
    means = _block_means(a - b, ok, block)
    if len(means) < 2:
        return False
    return bool(means.mean() + z * means.std(ddof=1) / np.sqrt(len(means)) < 0)


def family_z(tests: int) -> float:
    """Bonferroni's one-sided bound for a family-wise error of FAMILY_ALPHA over ``tests`` tests."""
    return NormalDist().inv_cdf(1 - FAMILY_ALPHA / max(1, tests))


def scores_by_row(candidates: dict[str, np.ndarray], actual: np.ndarray, close: np.ndarray):
    """(rows usable by all, {name: (n, H) interval score in the quote currency, 0 where unusable})"""
    ok = usable_rows(candidates, actual)
    truth = np.where(ok, actual, 0.0)
    return ok, {name: np.where(ok, relative_interval_score(np.where(ok[..., None], band, 0.0), truth)
                               * close[:, None], 0.0) for name, band in candidates.items()}


def choose_served(candidates: dict[str, np.ndarray], actual: np.ndarray, close: np.ndarray, *,
                  block: int, mean_of: tuple[str, ...] = DEFAULT_MEAN) -> tuple[list[str], dict[str, np.ndarray]]:
    """Per horizon, the band to serve (a sources.py spec): the equal-weight mean of the ``mean_of``
    bands that could be fit, unless one candidate beats that mean at this horizon by more than
    chance (``lower_beyond_chance`` with Bonferroni's bound over every candidate and horizon).

    Why a fixed mean and not the leaders of the validation slice: 90 days cannot rank bands whose
    scores differ by a percent. Replayed on the seven development series (bench/choice_rules.py),
    serving the mean of the 1, 2, 3, 4 or 5 best-ranked bands of each fit scored 0.955, 0.954,
    0.954, 0.956 and 0.956 of the empirical band's, while the fixed mean of the volatility model and
    GARCH scored 0.950 and the volatility model alone 0.949 (docs/forecasting.md). The mean of two
    models of different make hedges the one that fits a market or a year less well (GARCH beat the
    volatility model on four of seven series of a later year): equal weights are hard to beat.

    candidates: name -> (n, H, 2) log-return bands scored out of sample; actual: (n, H) log returns;
    close: (n,) the origins' closes (scores are in the quote currency, as a backtest reports them).
    Only rows of ``usable_rows`` count. -> (spec per horizon, {name or spec: (H,) mean score})"""
    z = family_z(actual.shape[1] * len(candidates))
    ok, rows = scores_by_row(candidates, actual, close)
    counts = np.maximum(ok.sum(axis=0), 1)
    scores = {name: r.sum(axis=0) / counts for name, r in rows.items()}
    mean = SEPARATOR.join([m for m in mean_of if m in candidates] or ["volatility"])
    if mean not in candidates:
        band = combine(candidates, mean)
        _, more = scores_by_row({mean: band}, np.where(ok, actual, np.nan), close)
        rows[mean] = more[mean]
        scores[mean] = rows[mean].sum(axis=0) / counts
    specs = [mean] * actual.shape[1]
    for h in range(actual.shape[1]):
        best = scores[mean][h]
        for name in candidates:
            if name != mean and scores[name][h] < best and lower_beyond_chance(
                    rows[name][:, h], rows[mean][:, h], ok[:, h], z, block):
                specs[h], best = name, scores[name][h]
    return specs, scores


def beaten_horizons(candidates: dict[str, np.ndarray], served: np.ndarray, rivals: list[str],
                    actual: np.ndarray, close: np.ndarray, block: int) -> list[int]:
    """Horizons (1-based) where one of ``rivals`` has a lower interval score than the ``served``
    band (n, H, 2) by more than chance, with the bound of ``choose_served`` (every candidate a
    challenger), so that a band the choice kept is not refused by a looser test: what the
    promotion gate refuses."""
    z = family_z(actual.shape[1] * len(candidates))
    ok, rows = scores_by_row({**candidates, "served": served}, actual, close)
    return [h + 1 for h in range(actual.shape[1])
            if any(lower_beyond_chance(rows[r][:, h], rows["served"][:, h], ok[:, h], z, block) for r in rivals)]
