"""Forecasting from a stored model: load safetensors bytes, forecast from an origin."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import torch

from . import learned, serialize, sources, windows
from .config import ModelConfig
from .device import resolve_device
from .errors import NotEnoughHistory
from .frames import candles_frame, step_grid, to_utc
from .volatility import feature_steps

FORECAST_COLUMNS = ["horizon", "target_time", "yhat", "yhat_lower", "yhat_upper"]


class Forecaster:
    """A trained model ready to forecast. Build it with ``Forecaster.load(weights)``."""

    def __init__(self, config: ModelConfig, stats: dict, meta: dict, network=None,
                 device: torch.device | None = None):
        self.config, self.meta, self.stats = config, meta, stats
        self.network, self.device = network, device
        # the learned model that trained ``network`` (learned.py); None: the band sources alone
        self.learner = learned.get(config.learned) if network is not None else None
        self.fitted = sources.load_all(stats["bands"])
        self.sources: list[str] = list(stats["sources"])  # the served band's spec per horizon

    @classmethod
    def load(cls, weights: bytes, device: torch.device | str = "cpu") -> "Forecaster":
        """Rebuild from ``TrainResult.weights`` (no pickle); works on CPU whatever trained it.
        Raises OutdatedModel for an older release's model."""
        device = device if isinstance(device, torch.device) else resolve_device(device)
        state, meta = serialize.load(weights)
        config = ModelConfig.from_dict(meta["config"])
        network = None
        if state:
            network = learned.get(config.learned).load(config, state, int(meta["n_features"]), device)
        return cls(config, meta["stats"], meta, network, device)

    @property
    def metrics(self) -> dict:
        return dict(self.meta.get("metrics", {}))

    @property
    def shrink(self) -> np.ndarray:
        """(H,) the median's move toward the learned model's, per horizon: 0 is the naive forecast
        (always, without a learned model)."""
        return np.asarray(self.stats.get("shrink", [0.0] * self.config.horizon), dtype=np.float64)

    @property
    def served_names(self) -> set[str]:
        return {m for spec in self.sources for m in sources.members(spec)}

    @property
    def history_steps(self) -> int:
        """Candles up to the origin a forecast reads: the bands' history (the volatility model's
        month of features at least), and the learned model's lookback when there is one."""
        need = sources.history_steps(self.served_names | {"volatility"}, self.config.step)
        if self.learner is not None:
            need = max(need, self.config.lookback)
        return need + 1

    def _usable(self, s: windows.Series, origins: np.ndarray) -> np.ndarray:
        """Which origins have a candle and a lookback missing at most max_gap_fraction."""
        lb = self.config.lookback
        counts = np.concatenate([[0], np.cumsum(s.observed)])
        ok = origins >= lb
        seen = np.where(ok, counts[origins + 1] - counts[np.maximum(origins - lb, 0)], 0)
        return ok & s.observed[origins] & (lb + 1 - seen <= self.config.max_gap_fraction * lb)

    def bands(self, s: windows.Series, origins: np.ndarray, names=None) -> dict[str, np.ndarray]:
        """Each fitted source's band at the origins: name -> (n, H, 2) log returns."""
        names = self.fitted if names is None else [n for n in names if n in self.fitted]
        return {name: self.fitted[name].band(s, origins) for name in names}

    def _quantiles(self, s: windows.Series, origins: np.ndarray) -> np.ndarray:
        """(n, H, 3) log-returns [lower, median, upper] from each origin: the band per horizon from
        the spec chosen at training, the median naive (0) unless a learned model moves it."""
        candidates = self.bands(s, origins, self.served_names | {"volatility"})
        center = learned.naive_center(len(origins), self.config.horizon)
        if self.learner is not None:
            candidates[self.learner.name], center = self.learner.quantiles(
                self.network, self.stats, s, origins, self.config, self.fitted, self.device)
        band = sources.served_band(candidates, self.sources)
        # a yardstick without enough history at this origin: the volatility band stands in
        band = np.where(np.isfinite(band), band, candidates["volatility"])
        if not np.isfinite(band).all():
            raise NotEnoughHistory(f"fewer than {min(feature_steps(s.interval))} candles of history before the "
                                   "origin for the volatility model")
        center = np.clip(center, band[..., 0], band[..., 1])  # exactly 0 where the median is naive
        return np.stack([band[..., 0], center, band[..., 1]], axis=-1)

    def forecast_many(self, frame: pd.DataFrame, origins, bands=()) -> pd.DataFrame:
        """Forecasts from several origins at once (each sees only rows <= itself): columns
        origin_time, horizon, target_time, yhat, yhat_lower, yhat_upper; and the band of each source
        named in ``bands`` (sources.py) from this same fit, as ``<name>_lower``/``<name>_upper`` (the
        frame must then reach ``sources.history_steps`` of them before the first origin)."""
        step = self.config.step
        frame = candles_frame(frame, step)
        stamps = pd.DatetimeIndex([to_utc(o) for o in origins])
        if len(stamps) == 0:
            return pd.DataFrame(columns=["origin_time", *FORECAST_COLUMNS])
        grid = step_grid(frame, step, end=stamps.max())
        s = windows.series_from_grid(grid, fill=True, interval=step)
        pos = grid.index.get_indexer(stamps)
        bad = (pos < 0) | ~self._usable(s, np.maximum(pos, 0))
        if bad.any():
            raise NotEnoughHistory(
                f"origin {stamps[bad][0]} is not a candle of the frame or has fewer than "
                f"{self.config.lookback} mostly complete candles of history before it")
        q = self._quantiles(s, pos)  # (n, H, 3)
        close = s.close[pos][:, None]
        # where the median does not move, the forecast is the close itself, not exp(log(close))
        yhat = np.where(q[..., 1] == 0.0, close, close * np.exp(q[..., 1]))
        h = np.arange(1, self.config.horizon + 1)
        out = pd.DataFrame({
            "origin_time": np.repeat(stamps, len(h)),
            "horizon": np.tile(h, len(stamps)),
            "yhat": yhat.ravel(),
            "yhat_lower": (close * np.exp(q[..., 0])).ravel(),
            "yhat_upper": (close * np.exp(q[..., 2])).ravel()})
        out.insert(2, "target_time", out["origin_time"] + out["horizon"] * pd.Timedelta(step.step))
        if len(bands):
            for name, band in self.bands(s, pos, bands).items():
                out[f"{name}_lower"] = (close * np.exp(band[..., 0])).ravel()
                out[f"{name}_upper"] = (close * np.exp(band[..., 1])).ravel()
        return out

    def forecast(self, frame: pd.DataFrame, origin: datetime | None = None) -> pd.DataFrame:
        """Forecast the next ``horizon`` closes from ``origin`` (default: the last row), using
        only rows with open_time <= origin. Gaps of at most ``max_gap_fraction`` of the lookback
        are forward-filled; otherwise NotEnoughHistory. Columns: horizon, target_time, yhat,
        yhat_lower, yhat_upper (prices in the units of close)."""
        frame = candles_frame(frame, self.config.step)
        if len(frame) == 0:
            raise NotEnoughHistory("no candles")
        origin = frame.index[-1] if origin is None else to_utc(origin)
        out = self.forecast_many(frame.loc[:origin], [origin])
        return out[FORECAST_COLUMNS].reset_index(drop=True)


def _as_forecaster(weights_or_forecaster) -> Forecaster:
    if isinstance(weights_or_forecaster, Forecaster):
        return weights_or_forecaster
    return Forecaster.load(weights_or_forecaster)


def evaluate(weights_or_forecaster, frame: pd.DataFrame, origins) -> dict:
    """Accuracy on the given origins whose targets all exist in ``frame``: mae, naive_mae,
    rmae, coverage, interval_score (alpha 0.2), n (forecasts scored). Used to compare an old
    and a new model on the same slice."""
    from . import metrics  # local: metrics is light, but keep predict's imports minimal

    fc = _as_forecaster(weights_or_forecaster)
    frame = candles_frame(frame, fc.config.step)
    pred = fc.forecast_many(frame, origins)
    scored = metrics.attach_actuals(pred, frame)
    return metrics.summary(scored)
