"""The seasonal GARCH-t FHS yardstick: it finds a GARCH where there is one, its band reads only
candles up to its origin, it covers what it says on real candles, and it survives being stored."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster import windows
from forecaster.frames import step_grid
from forecaster.garch import GarchModel, fit_garch
from tests.helpers.frames import real_candles


def _simulated_garch(n: int, omega: float, alpha: float, beta: float, seed: int = 0) -> np.ndarray:
    """Log closes of a GARCH(1,1) with Student-t(5) shocks of unit variance."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_t(5, n) / np.sqrt(5 / 3)
    var, r = omega / (1 - alpha - beta), np.empty(n)
    for i in range(n):
        r[i] = np.sqrt(var) * shocks[i]
        var = omega + alpha * r[i] ** 2 + beta * var
    return np.cumsum(r)


def test_the_fit_finds_the_garch_that_made_the_returns_and_its_band_covers_80_percent():
    n, fit_end = 9_000, 6_000
    log_close = _simulated_garch(n, omega=1e-6, alpha=0.08, beta=0.9)
    times = pd.date_range("2022-01-01", periods=n, freq="h", tz="UTC")
    model = fit_garch(log_close, times, horizon=6, end=fit_end)
    assert model.alpha == pytest.approx(0.08, abs=0.03) and model.beta == pytest.approx(0.9, abs=0.04)
    assert 3 < model.nu < 8
    origins = np.arange(fit_end, n - 6)  # out of sample
    band = model.band(np.diff(log_close, prepend=np.nan), np.zeros(n, int), origins)
    actual = log_close[origins[:, None] + np.arange(1, 7)] - log_close[origins][:, None]
    inside = (actual >= band[..., 0]) & (actual <= band[..., 1])
    assert 0.76 < inside.mean() < 0.84


@pytest.fixture(scope="module")
def frame():
    return real_candles(3_000)


def test_the_band_reads_only_candles_up_to_its_origin(frame):
    s = windows.series_from_grid(step_grid(frame))
    model = fit_garch(s.log_close, s.times, 24, end=2_000)
    origins = np.array([2_100, 2_500, 2_800])
    changed = frame.copy()
    changed.iloc[2_801:, :4] *= np.linspace(1.0, 3.0, len(changed) - 2_801)[:, None]  # a rally after
    c = windows.series_from_grid(step_grid(changed))
    np.testing.assert_array_equal(model.band(s.returns, s.slot, origins), model.band(c.returns, c.slot, origins))
    # and the fit reads nothing after its end
    again = fit_garch(c.log_close, c.times, 24, end=2_000)
    assert again.to_dict() == model.to_dict()


def test_on_real_candles_the_band_covers_about_80_percent_and_widens_with_the_horizon(frame):
    s = windows.series_from_grid(step_grid(frame))
    model = fit_garch(s.log_close, s.times, 24, start=0, end=2_000)
    origins = np.arange(2_001, len(s.log_close) - 24)
    band = model.band(s.returns, s.slot, origins)
    actual = s.log_close[origins[:, None] + np.arange(1, 25)] - s.log_close[origins][:, None]
    inside = (actual >= band[..., 0]) & (actual <= band[..., 1])
    assert 0.7 < inside.mean() < 0.9
    width = (band[..., 1] - band[..., 0]).mean(axis=0)
    assert (np.diff(width) > 0).all()
    assert model.season.shape == (168,)


def test_a_stored_garch_gives_the_same_band(frame):
    s = windows.series_from_grid(step_grid(frame))
    model = fit_garch(s.log_close, s.times, 6, end=2_500)
    again = GarchModel.from_dict(model.to_dict())
    origins = np.arange(2_600, 2_700)
    np.testing.assert_array_equal(model.band(s.returns, s.slot, origins), again.band(s.returns, s.slot, origins))
