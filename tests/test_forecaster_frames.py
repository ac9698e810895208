"""Input frames: normal form, validation, hourly grid with gaps."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.frames import candles_frame, step_grid
from tests.helpers.frames import real_candles


def test_candles_frame_normalises_iso_text_and_epoch_ms():
    raw = pd.DataFrame({"ts": ["2023-01-01T01:00:00Z", "2023-01-01T00:00:00Z"],
                        "open": ["1", "2"], "high": [3, 3], "low": [1, 1], "close": [2, 2],
                        "volume": [5, 6]})
    out = candles_frame(raw)
    assert out.index.name == "open_time" and str(out.index.tz) == "UTC"
    assert list(out.index.hour) == [0, 1]  # sorted
    assert list(out.columns) == ["open", "high", "low", "close", "volume"]
    assert (out.dtypes == "float64").all()
    ms = raw.assign(ts=[1672534800000, 1672531200000])
    pd.testing.assert_frame_equal(candles_frame(ms), out)
    assert candles_frame(out).equals(out)  # idempotent


def test_candles_frame_rejects_bad_rows():
    raw = pd.DataFrame({"open_time": ["2023-01-01T00:00Z", "2023-01-01T00:00Z"], "open": 1,
                        "high": 1, "low": 1, "close": 1, "volume": 1})
    with pytest.raises(ValueError, match="duplicate"):
        candles_frame(raw)
    with pytest.raises(ValueError, match="bad candle"):
        candles_frame(raw.iloc[:1].assign(close=-1.0))
    with pytest.raises(ValueError, match="lack"):
        candles_frame(raw.drop(columns="volume"))


def test_step_grid_marks_missing_hours_and_cuts_at_end():
    frame = real_candles(50).drop(index=real_candles(50).index[[10, 11, 30]])
    grid = step_grid(frame)
    assert len(grid) == 50 and grid["close"].isna().sum() == 3
    end = frame.index[20]
    assert step_grid(frame, end=end).index[-1] == end
    assert np.isfinite(grid["close"].dropna()).all()
