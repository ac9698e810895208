"""The model-free yardsticks and the volatility model: computed only from data at or before the
origin, equal to their textbook definitions, and the choice of band per horizon is honest."""
from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from forecaster import bands, calibrate, metrics, windows
from forecaster.frames import step_grid
from forecaster.volatility import fit_volatility, seasonal_factors
from tests.test_forecaster_frames import real_candles


def _series(frame):
    return windows.series_from_grid(step_grid(frame))


@pytest.fixture(scope="module")
def frame():
    return real_candles(2_000)


def test_every_band_reads_only_candles_up_to_its_origin(frame):
    origins = np.array([1_500, 1_700, 1_900])
    changed = frame.copy()
    changed.iloc[1_901:, :4] *= np.linspace(1.0, 3.0, len(changed) - 1_901)[:, None]  # a rally after
    changed.iloc[1_901:, 4] *= 50
    a, b = _series(frame), _series(changed)
    for name in bands.YARDSTICKS:
        np.testing.assert_array_equal(bands.yardsticks(a.log_close, origins, 24)[name],
                                      bands.yardsticks(b.log_close, origins, 24)[name], err_msg=name)
    vol = fit_volatility(a.log_close, a.log_range, a.times, 24, end=1_400)
    np.testing.assert_array_equal(vol.band(a.log_close, a.log_range, a.times, origins),
                                  vol.band(b.log_close, b.log_range, b.times, origins))
    refit = fit_volatility(b.log_close, b.log_range, b.times, 24, end=1_400)
    np.testing.assert_array_equal(vol.beta, refit.beta)  # fit up to `end` ignores what follows


def test_empirical_band_is_the_quantiles_of_past_h_hour_returns(frame):
    s = _series(frame)
    t, h = 1_800, 6
    band = bands.empirical(s.log_close, np.array([t]), 24, window=1_000)
    starts = np.arange(t - 1_000 + 1, t - h + 1)
    past = s.log_close[starts + h] - s.log_close[starts]
    np.testing.assert_allclose(band[0, h - 1], np.quantile(past, [0.1, 0.9]))


def test_ewma_band_is_normal_with_the_ewma_volatility(frame):
    s = _series(frame)
    t = 1_800
    r = np.diff(s.log_close[: t + 1])
    var = r[0] ** 2
    for x in r[1:]:
        var = 0.97 * var + 0.03 * x * x
    band = bands.ewma_normal(s.log_close, np.array([t]), 24)
    z = NormalDist().inv_cdf(0.9)
    np.testing.assert_allclose(band[0, 3], [-z * np.sqrt(var) * 2, z * np.sqrt(var) * 2], rtol=1e-9)


def test_fhs_band_scales_past_standardised_returns_by_todays_volatility(frame):
    s = _series(frame)
    t, h = 1_800, 4
    sigma = bands.ewma_sigma(s.log_close, 0.99)
    band = bands.fhs(s.log_close, np.array([t]), 24, window=1_000)
    starts = np.arange(t - 1_000 + 1, t - h + 1)
    z = (s.log_close[starts + h] - s.log_close[starts]) / (sigma[starts] * np.sqrt(h))
    np.testing.assert_allclose(band[0, h - 1], np.quantile(z, [0.1, 0.9]) * sigma[t] * np.sqrt(h))


def test_seasonal_factors_find_quiet_weekends_and_busy_us_hours():
    frame = real_candles(8_759, end="2023-12-31T23:00Z")  # the whole of 2023
    s = _series(frame)
    season = seasonal_factors(s.returns, s.slot)
    assert season.shape == (168,) and np.isclose(np.mean(season ** 2), 1.0)
    by_hour = season.reshape(7, 24).mean(axis=0)
    assert by_hour[14] > by_hour[4]  # 14:00 UTC (US open) moves more than 04:00 UTC
    assert season.reshape(7, 24)[5].mean() < season.reshape(7, 24)[2].mean()  # Saturday < Wednesday


def test_a_challenger_band_is_served_only_where_it_wins_beyond_chance():
    rng = np.random.default_rng(0)
    n = 24 * 90
    actual = rng.normal(0, 0.01, size=(n, 3))
    good = np.stack([np.full((n, 3), -0.0128), np.full((n, 3), 0.0128)], axis=-1)  # the right band
    default = good.copy()
    default[:, 0] *= 2.0  # h=1: twice too wide
    default[:, 1] *= 1.002  # h=2: a hair too wide, a difference chance could make
    rival = {"default": default, "good": good}
    sources, scores = calibrate.choose_sources(rival, actual, np.full(n, 100.0), default="default", block=24)
    assert sources == ["good", "default", "default"]
    assert scores["good"][1] < scores["default"][1]  # lower, but not beyond chance
    assert calibrate.beaten_horizons(rival, ["default"] * 3, ["good"], actual, np.full(n, 100.0), 24) == [1]


def test_the_promotion_gate_never_refuses_the_bands_training_chose():
    # Training serves a challenger only where it wins beyond chance; the gate must use the same
    # bound, or a band margin between the two tests has no promotable model (a market then never
    # forecasts: the daemon retrains and rejects it every cycle).
    n, horizon = 24 * 60, 24
    for seed in range(20):
        rng = np.random.default_rng(seed)
        actual = rng.normal(0, 0.01, size=(n, horizon))
        widths = {name: 0.0128 * rng.uniform(0.97, 1.06, size=horizon) for name in
                  ("volatility", "lstm", "empirical", "ewma", "fhs")}
        candidates = {name: np.stack([np.broadcast_to(-w, (n, horizon)), np.broadcast_to(w, (n, horizon))], axis=-1)
                      for name, w in widths.items()}
        close = np.full(n, 100.0)
        sources, _ = calibrate.choose_sources(candidates, actual, close, default="volatility", block=24)
        assert calibrate.beaten_horizons(candidates, sources, ["empirical", "ewma", "fhs"], actual, close, 24) == [], seed


def test_cross_fitted_conformal_band_never_sees_the_origins_it_is_scored_on():
    rng = np.random.default_rng(1)
    n = 600
    actual = np.r_[rng.normal(0, 1, (n // 2, 3)), rng.normal(0, 3, (n // 2, 3))]
    center, gap = np.zeros((n, 3)), np.ones((n, 3))
    band = calibrate.cross_fitted(center, gap, gap, actual)
    # the calm first half calibrates the wild second half: too narrow there, and vice versa
    inside = (actual >= band[..., 0]) & (actual <= band[..., 1])
    assert inside[n // 2:].mean() < 0.7 and inside[: n // 2].mean() > 0.9


def test_bootstrap_interval_resamples_days_and_brackets_the_ratio():
    rng = np.random.default_rng(2)
    origins = pd.date_range("2023-01-01", periods=24 * 60, freq="h", tz="UTC")
    rows = pd.DataFrame({"origin_time": np.repeat(origins, 2), "horizon": np.tile([1, 2], len(origins))})
    y = rng.normal(100, 1, len(rows))
    rows = rows.assign(actual=y, yhat_lower=99.0, yhat_upper=101.0, empirical_lower=98.5, empirical_upper=101.5)
    out = metrics.bootstrap_ratio(rows, "empirical")
    assert out["blocks"] == 60 and out["low"] <= out["ratio"] <= out["high"]
    direct = np.mean([metrics.interval_score(g["yhat_lower"], g["yhat_upper"], g["actual"])
                      / metrics.interval_score(g["empirical_lower"], g["empirical_upper"], g["actual"])
                      for _, g in rows.groupby("horizon")])
    assert out["ratio"] == pytest.approx(direct)
