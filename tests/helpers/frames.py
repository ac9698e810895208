"""Real candles as the forecaster's frames: the Binance ETH-USDT hours of tests/data."""
from __future__ import annotations

from functools import lru_cache

import pandas as pd

from forecaster.frames import candles_frame
from tests.helpers.paths import BINANCE_CSV


@lru_cache(maxsize=1)
def _binance() -> pd.DataFrame:
    return candles_frame(pd.read_csv(BINANCE_CSV))


def real_candles(n: int, end: str = "2023-06-30T23:00Z") -> pd.DataFrame:
    """The ``n`` real Binance candles up to ``end`` (2023 only; gap-free after 2023-03-24)."""
    frame = _binance().loc[:pd.Timestamp(end)]
    assert len(frame) >= n, f"tests/data holds only {len(frame)} Binance candles up to {end}"
    return frame.iloc[-n:].copy()
