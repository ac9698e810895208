"""Forecasting from a stored model: load safetensors bytes, forecast from an origin."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import torch

from . import bands, calibrate, serialize, windows
from .config import ModelConfig
from .device import resolve_device
from .errors import NotEnoughHistory
from .frames import candles_frame, step_grid, to_utc
from .model import QuantileLSTM
from .volatility import VolatilityModel, feature_steps

FORECAST_COLUMNS = ["horizon", "target_time", "yhat", "yhat_lower", "yhat_upper"]


class Forecaster:
    """A trained model ready to forecast. Build it with ``Forecaster.load(weights)``."""

    def __init__(self, model: QuantileLSTM, config: ModelConfig, stats: dict, meta: dict,
                 device: torch.device):
        self.model, self.config, self.device, self.meta = model.eval(), config, device, meta
        self.shrink = np.asarray(stats["shrink"], dtype=np.float64)
        self.k_lo = np.asarray(stats["k_lo"], dtype=np.float64)
        self.k_up = np.asarray(stats["k_up"], dtype=np.float64)
        self.vol = VolatilityModel.from_dict(stats["volatility"])
        self.sources: list[str] = list(stats["sources"])

    @classmethod
    def load(cls, weights: bytes, device: torch.device | str = "cpu") -> "Forecaster":
        """Rebuild from ``TrainResult.weights`` (no pickle); works on CPU whatever trained it.
        Raises OutdatedModel for an older release's model."""
        device = device if isinstance(device, torch.device) else resolve_device(device)
        state, meta = serialize.load(weights)
        config = ModelConfig.from_dict(meta["config"])
        model = QuantileLSTM(int(meta["n_features"]), config.hidden_size, config.num_layers,
                             config.dropout, config.horizon, config.patch)
        model.load_state_dict(state)
        return cls(model.to(device), config, meta["stats"], meta, device)

    @property
    def metrics(self) -> dict:
        return dict(self.meta.get("metrics", {}))

    @property
    def history_steps(self) -> int:
        """Candles up to the origin a forecast reads: the lookback, the volatility model's month
        of features, and the yardsticks' window when one of them is served."""
        need = max(self.config.lookback, max(feature_steps(self.config.step)))
        if set(self.sources) & set(bands.YARDSTICKS):
            need = max(need, bands.window_steps(self.config.step))
        return need + 1

    def _usable(self, s: windows.Series, origins: np.ndarray) -> np.ndarray:
        """Which origins have a candle and a lookback missing at most max_gap_fraction."""
        lb = self.config.lookback
        counts = np.concatenate([[0], np.cumsum(s.observed)])
        ok = origins >= lb
        seen = np.where(ok, counts[origins + 1] - counts[np.maximum(origins - lb, 0)], 0)
        return ok & s.observed[origins] & (lb + 1 - seen <= self.config.max_gap_fraction * lb)

    def _quantiles(self, s: windows.Series, origins: np.ndarray) -> np.ndarray:
        """(n, H, 3) log-returns [lower, median, upper] from each origin: the median from the
        LSTM (shrunk), the band per horizon from the source chosen at training."""
        state = windows.origin_state(self.vol, s, origins)
        x = windows.inputs(s, origins, self.config.lookback, self.vol, state)
        with torch.inference_mode():
            z = self.model(torch.from_numpy(x).to(self.device)).float().cpu().numpy()
        lower, center, upper = calibrate.apply(z.astype(np.float64), self.shrink, self.k_lo, self.k_up)
        candidates = {"lstm": np.stack([lower, upper], axis=-1) * state.scale[..., None],
                      "volatility": state.scale[..., None] * self.vol.z[None]}
        wanted = [name for name in bands.YARDSTICKS if name in self.sources]
        window = bands.window_steps(s.interval)
        for name in wanted:
            candidates[name] = bands.YARDSTICKS[name](s.log_close, origins, self.config.horizon, window)
        band = np.stack([candidates[src][:, h] for h, src in enumerate(self.sources)], axis=1)
        # a yardstick without enough history at this origin: the volatility band stands in
        band = np.where(np.isfinite(band), band, candidates["volatility"])
        if not np.isfinite(band).all():
            raise NotEnoughHistory(f"fewer than {min(feature_steps(s.interval))} candles of history before the "
                                   "origin for the volatility model")
        center = center * state.scale  # exactly 0 where the median is the naive forecast
        center = np.clip(center, band[..., 0], band[..., 1])
        return np.stack([band[..., 0], center, band[..., 1]], axis=-1)

    def forecast_many(self, frame: pd.DataFrame, origins) -> pd.DataFrame:
        """Forecasts from several origins at once (each sees only rows <= itself): columns
        origin_time, horizon, target_time, yhat, yhat_lower, yhat_upper."""
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
