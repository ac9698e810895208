"""Model hyperparameters: a frozen dataclass saved with every model, so it can be rebuilt."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from core.intervals import DEFAULT_INTERVAL, INTERVALS, get_interval

from . import learned
from .defaults import defaults_for

QUANTILES = (0.1, 0.5, 0.9)
# Names older models and settings used, read as today's (FORECASTER_MODEL_OVERRIDES, stored configs).
RENAMED = {"val_hours": "val_steps", "volatility_hours": "volatility_steps"}


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of the forecaster (plain JSON types only). Lengths are in steps of
    ``interval`` (hours for the default 1h); ``ModelConfig.for_interval`` gives each interval's
    defaults (forecaster/defaults.py).

    Args:
        interval: the candle interval the model reads and forecasts (core.intervals.SUPPORTED).
        lookback: steps of closed candles the model sees before the origin.
        horizon: steps forecast from each origin (1..horizon).
        patch: consecutive steps the LSTM reads as one (lookback / patch LSTM steps): the same
            information, several times faster on a CPU than one LSTM step per candle.
        hidden_size, num_layers, dropout: LSTM size.
        lr, weight_decay, max_epochs, batch_size, patience, grad_clip: optimisation.
        val_steps: the latest steps of the training span held out (by time) for early stopping,
            median shrinkage, band calibration and the choice of band per horizon. Half of the
            default 180-day span: the band's conformal factors from 30 days were too noisy
            (checked on 2021-2023 of both series, not on one window).
        volatility_steps: the history the volatility model (forecaster/volatility.py) is fit on,
            up to the origin (two years for 1h, or what the store has); longer than the LSTM's
            span because its 7 coefficients per horizon are noisy on 180 days of overlapping
            returns (interval score of its band relative to the empirical band's, seven 1h
            development series, weekly refits: 0.959 on 180 days, 0.948 on one year, 0.945 on two).
        max_gap_fraction: at forecast time, the largest share of missing candles in the lookback
            that is forward-filled; more raises NotEnoughHistory.
        shrink_grid: number of steps of the per-horizon median shrinkage grid on [0, 1].
        seed: seeds Python, NumPy and torch; same data + config + seed on CPU -> same weights.
        learned: the learned band trained per market beside the band sources: ``none`` (the
            default: the bands of forecaster/sources.py and the naive median, no torch training)
            or ``lstm`` (the quantile LSTM of forecaster/lstm_band.py, a candidate band and a
            shrunk median; see docs/forecasting.md for what it bought on the development data).
    """

    interval: str = DEFAULT_INTERVAL
    lookback: int = 168
    horizon: int = 24
    patch: int = 4
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    lr: float = 3e-3
    weight_decay: float = 1e-4
    max_epochs: int = 30
    batch_size: int = 256
    patience: int = 5
    grad_clip: float = 1.0
    val_steps: int = 2160
    volatility_steps: int = 17520
    max_gap_fraction: float = 0.1
    shrink_grid: int = 20
    seed: int = 0
    learned: str = "none"

    def __post_init__(self) -> None:
        if self.learned not in learned.names():  # the learned model trained per market (learned.py)
            raise ValueError(f"learned must be one of {', '.join(learned.names())}")
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        if self.interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
        if self.lookback < 2 or self.horizon < 1:
            raise ValueError("lookback must be >= 2 and horizon >= 1")
        if self.patch < 1 or self.lookback % self.patch:
            raise ValueError("patch must be >= 1 and divide lookback")
        if self.hidden_size < 1 or self.num_layers < 1 or self.max_epochs < 1:
            raise ValueError("hidden_size, num_layers and max_epochs must be >= 1")
        if self.val_steps < self.horizon + 1:
            raise ValueError("val_steps must exceed horizon")
        if self.volatility_steps < 30 * get_interval(self.interval).steps_per_day:
            raise ValueError("volatility_steps must cover at least 30 days")
        if not 0.0 <= self.max_gap_fraction < 1.0:
            raise ValueError("max_gap_fraction must be in [0, 1)")

    @property
    def step(self):
        return get_interval(self.interval)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Build from a dict; unknown keys are ignored so older readers accept newer models, and
        renamed keys are read under their new names."""
        names = {f.name for f in fields(cls)}
        d = {RENAMED.get(k, k): v for k, v in dict(d).items()}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def for_interval(cls, interval: str = DEFAULT_INTERVAL, **overrides) -> "ModelConfig":
        """The defaults of an interval (forecaster/defaults.py), then ``overrides``."""
        d = defaults_for(interval)
        base = {"interval": get_interval(interval).name, "lookback": d.lookback, "patch": d.patch, "horizon": d.horizon,
                "val_steps": d.val_steps, "volatility_steps": d.volatility_steps}
        return cls.from_dict({**base, **overrides})
