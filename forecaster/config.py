"""Model hyperparameters: a frozen dataclass saved with every model, so it can be rebuilt."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of the LSTM forecaster (plain JSON types only).

    Args:
        lookback: hours of closed candles the model sees before the origin.
        horizon: hours forecast from each origin (1..horizon).
        patch: consecutive hours the LSTM reads as one step (lookback / patch steps): the
            same information, several times faster on a CPU than one step per hour.
        hidden_size, num_layers, dropout: LSTM size.
        lr, weight_decay, max_epochs, batch_size, patience, grad_clip: optimisation.
        val_hours: the latest hours of the training span held out (by time) for early stopping,
            median shrinkage, band calibration and the choice of band per horizon. Half of the
            default 180-day span: the band's conformal factors from 30 days were too noisy
            (checked on 2021-2023 of both series, not on one window).
        volatility_hours: the history the volatility model (forecaster/volatility.py) is fit on,
            up to the origin (two years, or what the store has); longer than the LSTM's span
            because its 7 coefficients per horizon are noisy on 180 days of overlapping returns
            (interval score of its band relative to the empirical band's, seven development
            series, weekly refits: 0.959 on 180 days, 0.948 on one year, 0.945 on two).
        max_gap_fraction: at forecast time, the largest share of missing hours in the lookback
            that is forward-filled; more raises NotEnoughHistory.
        shrink_grid: number of steps of the per-horizon median shrinkage grid on [0, 1].
        seed: seeds Python, NumPy and torch; same data + config + seed on CPU -> same weights.
    """

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
    val_hours: int = 2160
    volatility_hours: int = 17520
    max_gap_fraction: float = 0.1
    shrink_grid: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.lookback < 2 or self.horizon < 1:
            raise ValueError("lookback must be >= 2 and horizon >= 1")
        if self.patch < 1 or self.lookback % self.patch:
            raise ValueError("patch must be >= 1 and divide lookback")
        if self.hidden_size < 1 or self.num_layers < 1 or self.max_epochs < 1:
            raise ValueError("hidden_size, num_layers and max_epochs must be >= 1")
        if self.val_hours < self.horizon + 1:
            raise ValueError("val_hours must exceed horizon")
        if self.volatility_hours < 24 * 30:
            raise ValueError("volatility_hours must be at least 720 (a month)")
        if not 0.0 <= self.max_gap_fraction < 1.0:
            raise ValueError("max_gap_fraction must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Build from a dict; unknown keys are ignored so older readers accept newer models."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(d).items() if k in names})
