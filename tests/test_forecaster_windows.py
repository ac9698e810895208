"""Windows never reach past their origin; inputs are scaled by what the volatility model
expected, known at the origin."""
from __future__ import annotations

import numpy as np

from forecaster import windows
from forecaster.frames import step_grid
from forecaster.volatility import fit_volatility
from tests.helpers.frames import real_candles


def _series(frame, fill=False):
    return windows.series_from_grid(step_grid(frame), fill=fill)


def _inputs(frame, origins, vol):
    s = _series(frame)
    state = windows.origin_state(vol, s, origins)
    return windows.inputs(s, origins, 48, vol, state), state


def test_inputs_depend_only_on_rows_up_to_the_origin():
    frame = real_candles(1_200)
    s = _series(frame)
    vol = fit_volatility(s.log_close, s.log_range, s.times, 6, end=900)
    origins = np.array([1_000, 1_050, 1_100])
    x, state = _inputs(frame, origins, vol)
    changed = frame.copy()
    changed.iloc[1_101:, :4] *= 3.0  # every price after the last origin
    changed.iloc[1_101:, 4] += 1e6
    x2, state2 = _inputs(changed, origins, vol)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(state.scale, state2.scale)
    assert x.shape == (3, 48, windows.N_FEATURES) and np.isfinite(x).all()
    assert state.scale.shape == (3, 6) and (np.diff(state.scale, axis=1) > 0).all()  # wider further out


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


def test_standardise_a_flat_window_does_not_divide_by_zero():
    z = windows.standardise(np.ones((1, 5)))
    assert np.all(z == 0)
