"""The records the forecaster hands to the jobs and the database: what a training measured and what
a backtest scored. Typed, so that a renamed figure fails where it is read instead of being stored
as NULL; their fields keep the names of the JSON and the columns they are stored in."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class TrainingMetrics:
    """What forecaster.train measured: the validation figures of what will be served (quote
    currency), the band chosen per horizon and the cost of the fit. Stored in the model's metadata
    (to_dict) and in the model_runs columns of the same names."""

    val_mae: float | None = None
    val_naive_mae: float | None = None
    val_rmae: float | None = None
    val_coverage: float | None = None
    val_interval_score: float | None = None  # the served band's, mean over horizons
    val_free_interval_score: float | None = None  # the best yardstick's at each horizon, same origins
    val_interval_score_by_source: dict[str, list[float]] = field(default_factory=dict)
    band_source: str | None = None  # e.g. "volatility+garch 1-20, fhs 21-24"
    band_beaten_at: list[int] = field(default_factory=list)  # horizons a yardstick beats beyond chance
    n_train: int | None = None
    n_val: int | None = None
    epochs: int = 0  # LSTM epochs; 0 when no network is trained
    device: str | None = None
    train_seconds: float = 0.0
    shrink: list[float] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the band served at each horizon

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingMetrics":
        """From the stored JSON; keys this release does not know are ignored (a newer model's)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class BacktestSummary:
    """A walk-forward backtest over every origin: how many, what the fits cost, the figures of
    forecaster.metrics.summary (n, mae, naive_mae, rmae, coverage, interval_score, each yardstick's
    `<name>_interval_score` and `<name>_coverage`, best_free_interval_score: the backtest_runs
    columns of the same names), the bootstrap ratio to the empirical band, and the band served per
    horizon by each fit."""

    n_origins: int
    n_fits: int
    fit_seconds: float
    figures: dict[str, float]
    ratio: dict | None = None  # metrics.bootstrap_ratio: ratio, low, high, blocks, block
    sources: list[str | None] = field(default_factory=list)
