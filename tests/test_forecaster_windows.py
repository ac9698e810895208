"""Windows never reach past their origin; scaling statistics come from the lookback or the
training span only and round-trip."""
from __future__ import annotations

import numpy as np

from forecaster import scaling, windows
from forecaster.frames import hourly_grid
from tests.test_forecaster_frames import real_candles


def _series(frame, fill=False):
    return windows.series_from_grid(hourly_grid(frame), fill=fill)


def test_inputs_depend_only_on_rows_up_to_the_origin():
    frame = real_candles(300)
    s = _series(frame)
    origins = np.array([100, 150, 200])
    x, sigma = windows.inputs(s, origins, 48, 0.01)
    changed = frame.copy()
    changed.iloc[201:, :4] *= 3.0  # every price after the last origin
    changed.iloc[201:, 4] += 1e6
    x2, sigma2 = windows.inputs(_series(changed), origins, 48, 0.01)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(sigma, sigma2)
    assert x.shape == (3, 48, windows.N_FEATURES)


def test_complete_origins_skip_gaps_in_lookback_and_targets():
    frame = real_candles(200)
    frame = frame.drop(index=frame.index[100])  # grid row 100 missing
    s = _series(frame)
    t = windows.complete_origins(s, lookback=24, horizon=6, with_targets=True)
    assert t.min() == 24 and t.max() == 199 - 6
    assert not np.any((t >= 100 - 6) & (t <= 100 + 24))  # target or lookback would touch row 100
    assert 100 - 7 in t and 100 + 25 in t
    t_no_targets = windows.complete_origins(s, 24, 6, with_targets=False)
    assert t_no_targets.max() == 199


def test_target_scaling_round_trips_and_uses_lookback_sigma():
    frame = real_candles(300)
    s = _series(frame)
    origins = np.arange(50, 250, 10)
    _, sigma = windows.inputs(s, origins, 48, 0.01)
    expected = np.array([np.std(s.returns[o - 47:o + 1]) for o in origins])
    np.testing.assert_allclose(sigma, expected)
    ret = windows.log_returns_ahead(s, origins, 12)
    z = scaling.scale_targets(ret, sigma)
    np.testing.assert_allclose(scaling.inverse_targets(z, sigma), ret, rtol=1e-12)
    q = np.stack([z - 1, z, z + 1], axis=-1)
    np.testing.assert_allclose(scaling.inverse_targets(q, sigma)[..., 1], ret, rtol=1e-12)


def test_span_sigma_ignores_gaps_and_flat_windows_do_not_divide_by_zero():
    r = np.array([np.nan, 0.01, -0.01, np.nan, 0.01])
    assert np.isclose(scaling.span_sigma(r), np.std([0.01, -0.01, 0.01]))
    assert scaling.window_sigma(np.zeros((2, 10))).min() > 0
    z = scaling.standardise(np.ones((1, 5)))
    assert np.all(z == 0)
