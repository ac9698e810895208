"""Band sources: every way the forecaster can make a central 80% band, behind one interface.

A source is fit on a stretch of one market's grid and then gives, for any origins, the 10% and 90%
quantiles of the log return from each origin's close to h = 1..H steps later, as an (n, H, 2) array,
reading only rows at or before each origin. Training scores every source on the same validation
origins, the served band is one source or the mean of several per horizon (``combine``), and the
backtest prints every yardstick beside what was served: all of that is written once, over this
table. A new band is one class here and one line in ``SOURCES``.

- ``volatility``: the project's volatility model (volatility.py), fit on up to two years.
- ``garch``: seasonal GARCH(1,1)-t with FHS quantiles (garch.py), fit on the training window.
- ``empirical``, ``ewma``, ``fhs``: the model-free rolling bands of bands.py (nothing to fit).

The four but ``volatility`` are *yardsticks* (CONTRACT.md): bands built without a learned model,
that every served band is printed and gated next to. A learned model (learned.py; the LSTM, off by
default) adds its band beside these through its own seam: it is trained, not fit, and stored as
weights; from there on its band is one more candidate, chosen, served and gated like these.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from . import bands
from .errors import NotEnoughHistory
from .garch import GarchModel, fit_garch
from .volatility import VolatilityModel, feature_steps, fit_volatility
from .windows import Series

_EWMA_WARM_UP = 2100  # rows: 0.99^2100 < 1e-9, the FHS EWMA's weight of what lies before them
GARCH_BURN_IN_DAYS = 30
GARCH_MIN_RETURNS = 1000  # rows before an origin the GARCH filter reads (persistence 0.99: 0.99^720 < 1e-3)


class FittedBand(Protocol):
    def band(self, s: Series, origins: np.ndarray) -> np.ndarray: ...
    def to_dict(self) -> dict: ...


@dataclass(frozen=True)
class BandSource:
    """A named way to make a band. ``fit(s, start, end, horizon)`` reads grid rows start..end of
    ``s`` (``start`` is the training window's first row; a source may read further back, as the
    volatility model does) and returns a fitted band; ``load`` rebuilds one from ``to_dict``.
    ``history`` (s.interval -> steps) is how far before an origin its band reads."""

    name: str
    yardstick: bool
    fit: Callable[[Series, int, int, int], FittedBand]
    load: Callable[[dict], FittedBand]
    history: Callable[[object], int]


@dataclass(frozen=True)
class _Rolling:
    """A model-free rolling band of bands.py: nothing to fit, nothing to store."""

    name: str
    horizon: int

    def band(self, s: Series, origins: np.ndarray) -> np.ndarray:
        origins = np.asarray(origins, np.int64)
        if origins.size == 0:
            return np.empty((0, self.horizon, 2))
        window = bands.window_steps(s.interval)
        # only the rows the window reads: the same numbers, without rolling over years of history
        # (the EWMA bands start further back, where their weights have long faded below 1e-9)
        lo = max(0, int(origins.min()) - window - self.horizon - _EWMA_WARM_UP)
        hi = int(origins.max()) + 1
        fn = bands.YARDSTICKS[self.name]
        return fn(s.log_close[lo:hi], origins - lo, self.horizon, window)

    def to_dict(self) -> dict:
        return {"horizon": self.horizon}


@dataclass(frozen=True)
class _Volatility:
    model: VolatilityModel

    def band(self, s: Series, origins: np.ndarray) -> np.ndarray:
        return self.model.band(s.log_close, s.log_range, s.times, origins)

    def to_dict(self) -> dict:
        return self.model.to_dict()


@dataclass(frozen=True)
class _Garch:
    model: GarchModel

    def band(self, s: Series, origins: np.ndarray) -> np.ndarray:
        return self.model.band(s.returns, s.slot, origins)

    def to_dict(self) -> dict:
        return self.model.to_dict()


def _nonzero_tails(vol: VolatilityModel) -> VolatilityModel:
    """A quantile of exactly 0 (a coin that often does not move for an hour) would make a band of
    zero width on one side: the LSTM, which starts from this band, could not move off it."""
    vol.z = np.stack([np.minimum(vol.z[:, 0], -1e-3), np.maximum(vol.z[:, 1], 1e-3)], axis=1)
    return vol


def _fit_volatility(s: Series, start: int, end: int, horizon: int) -> _Volatility:
    # fit on everything up to ``end`` that the caller passed (up to two years), not just the window
    return _Volatility(_nonzero_tails(fit_volatility(s.log_close, s.log_range, s.times, horizon, end=end,
                                                     interval=s.interval)))


def _fit_garch(s: Series, start: int, end: int, horizon: int) -> _Garch:
    # the training window, but at least GARCH_MIN_RETURNS where the history has them: four
    # parameters by maximum likelihood and a quantile pair per horizon from the returns
    start = max(0, min(start, end + 1 - GARCH_MIN_RETURNS))
    return _Garch(fit_garch(s.log_close, s.times, horizon, start=start, end=end, interval=s.interval))


def _rolling(name: str) -> BandSource:
    return BandSource(name, True, lambda s, start, end, horizon: _Rolling(name, horizon),
                      lambda d: _Rolling(name, int(d["horizon"])), bands.window_steps)


SOURCES: dict[str, BandSource] = {
    "volatility": BandSource("volatility", False, _fit_volatility,
                             lambda d: _Volatility(VolatilityModel.from_dict(d)),
                             lambda iv: max(feature_steps(iv))),
    **{name: _rolling(name) for name in bands.YARDSTICKS},
    "garch": BandSource("garch", True, _fit_garch, lambda d: _Garch(GarchModel.from_dict(d)),
                        lambda iv: iv.days(GARCH_BURN_IN_DAYS)),
}
YARDSTICKS = tuple(name for name, src in SOURCES.items() if src.yardstick)  # empirical, ewma, fhs, garch


def fit_all(s: Series, start: int, end: int, horizon: int) -> dict[str, FittedBand]:
    """Every source fit on rows start..end; a source that cannot be fit there (a GARCH fit that
    does not converge, too little history) is left out, so the others still serve."""
    fitted = {}
    for name, src in SOURCES.items():
        try:
            fitted[name] = src.fit(s, start, end, horizon)
        except NotEnoughHistory:
            if name == "volatility":
                raise  # the volatility model is the floor every forecast stands on
    return fitted


def load_all(stored: dict[str, dict]) -> dict[str, FittedBand]:
    return {name: SOURCES[name].load(d) for name, d in stored.items() if name in SOURCES}


def history_steps(names, interval) -> int:
    """Rows before an origin that the bands of ``names`` read."""
    return max([SOURCES[n].history(interval) for n in names if n in SOURCES] or [0])


# A served band per horizon is one source or the mean of several, written "volatility+garch".
SEPARATOR = "+"
DEFAULT_MEAN = ("volatility", "garch")  # served where no band beats their mean beyond chance (calibrate)


def members(spec: str) -> list[str]:
    return spec.split(SEPARATOR)


def combine(candidates: dict[str, np.ndarray], spec: str) -> np.ndarray:
    """The band of a spec: one candidate's, or the mean of its members' quantiles (the simple
    average, the robust choice of the forecast-combination literature: Timmermann 2006;
    Lichtendahl, Grushka-Cockayne & Winkler 2013 for quantiles). -> (n, H, 2)"""
    return np.mean([candidates[m] for m in members(spec)], axis=0)


def served_band(candidates: dict[str, np.ndarray], specs: list[str]) -> np.ndarray:
    """(n, H, 2): horizon h from the band of specs[h]."""
    return np.stack([combine(candidates, spec)[:, h] for h, spec in enumerate(specs)], axis=1)
