"""Training: candles in, a model (safetensors bytes) and its metrics out. No I/O.

The span is split by time: the last ``val_steps`` steps are the validation slice. Fits for the
validation read rows up to the split only; validation origins are at or after it.

1. Every band source (sources.py: the volatility model, the GARCH yardstick and the rolling
   yardsticks) is fit up to the split, and the learned model ``config.learned`` names (learned.py;
   none by default) trained.
2. Every band is scored out of sample on the validation origins, and per horizon the band to serve
   is chosen (calibrate.choose_served): the mean of the volatility model's and GARCH's bands,
   unless one band beats that mean beyond chance there.
3. Every source is fit again on the whole span for serving; the promotion gate (jobs/) reads
   ``band_beaten_at``: horizons where a yardstick beat the served band beyond chance.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import numpy as np
import pandas as pd
import torch

from . import calibrate, learned, serialize, sources, windows
from .config import ModelConfig
from .device import resolve_device
from .errors import NotEnoughHistory
from .frames import candles_frame, step_grid
from .learned import LearnedFit
from core.records import TrainingMetrics

MIN_TRAIN_SAMPLES = 64
MIN_VAL_SAMPLES = 24


@dataclass
class TrainResult:
    weights: bytes
    metrics: TrainingMetrics
    config: ModelConfig
    train_start: datetime
    train_end: datetime


def _origins(s: windows.Series, cfg: ModelConfig, first: int):
    """(training origins, validation origins, split row). ``first`` is the training window's
    first grid row. Origins have every target; only the LSTM needs a whole lookback window before
    them too (the bands read history with gaps: one missing 4h candle would otherwise cost 198
    origins)."""
    n = len(s.log_close)
    lookback = cfg.lookback if cfg.learned != "none" else 0
    origins = windows.complete_origins(s, lookback, cfg.horizon, with_targets=True)
    origins = origins[origins - lookback >= first]
    split = n - 1 - cfg.val_steps  # grid index of the split step
    train_o = origins[origins + cfg.horizon <= split]
    val_o = origins[origins >= split]
    if len(train_o) < MIN_TRAIN_SAMPLES or len(val_o) < MIN_VAL_SAMPLES:
        need = cfg.lookback + cfg.horizon + MIN_TRAIN_SAMPLES + cfg.val_steps
        raise NotEnoughHistory(
            f"{n - first} {cfg.interval} candles give {len(train_o)} complete training and {len(val_o)} "
            f"validation windows; need at least {MIN_TRAIN_SAMPLES} and {MIN_VAL_SAMPLES} "
            f"(about {need}+ gap-free candles for lookback={cfg.lookback}, "
            f"horizon={cfg.horizon}, val_steps={cfg.val_steps})")
    return train_o, val_o, split


def _band_metrics(candidates: dict, specs: list[str], scores: dict, ret: np.ndarray, close: np.ndarray,
                  center: np.ndarray) -> dict:
    """Validation figures of what will be served, in the quote currency: MAE of the median vs
    naive, and the interval score and coverage of the served band (out of sample, per horizon
    from its source) vs the best yardstick at each horizon, on the same origins."""
    ok = calibrate.usable_rows(candidates, ret)
    served = sources.served_band(candidates, specs)
    inside = (ret >= served[..., 0]) & (ret <= served[..., 1])
    free = np.min([scores[k] for k in sources.YARDSTICKS if k in scores], axis=0)
    truth = close[:, None] * np.exp(ret)
    mae = np.abs(close[:, None] * np.exp(center) - truth).mean()
    naive = np.abs(close[:, None] - truth).mean()
    served_scores = np.array([scores[spec][h] for h, spec in enumerate(specs)])
    return {"val_mae": float(mae), "val_naive_mae": float(naive), "val_rmae": float(mae / naive),
            "val_coverage": float(inside[ok].mean()),
            "val_interval_score": float(served_scores.mean()),
            "val_free_interval_score": float(np.mean(free)),
            "val_interval_score_by_source": {k: v.tolist() for k, v in scores.items()},
            "band_source": describe_sources(specs)}


def describe_sources(specs: list[str]) -> str:
    """Runs of horizons per served band, e.g. ``volatility+garch 1-20, fhs 21-24``."""
    runs, start = [], 0
    for i in range(1, len(specs) + 1):
        if i == len(specs) or specs[i] != specs[start]:
            runs.append(f"{specs[start]} {start + 1}" + (f"-{i}" if i - start > 1 else ""))
            start = i
    return ", ".join(runs)


def _learned(s, train_o, val_o, fitted, cfg, device, stop, progress) -> LearnedFit | None:
    """The learned model ``cfg.learned`` names, trained; None without one."""
    model = learned.get(cfg.learned)
    if model is None:
        return None
    return model.train(s, train_o, val_o, fitted, cfg, device, stop=stop, progress=progress)


def train(frame: pd.DataFrame, config: ModelConfig, device: torch.device | str = "cpu", *,
          train_steps: int | None = None, stop=None,
          progress: Callable[[int, int, float, float], None] | None = None) -> TrainResult:
    """Train on the rows of ``frame`` (the caller picks the window): the volatility model on the
    last ``config.volatility_steps`` of it, the GARCH and the LSTM on the last ``train_steps``
    (default: all), in steps of ``config.interval``. Raises NotEnoughHistory if too little complete
    data, TrainingCancelled if ``stop`` (an Event-like) is set."""
    started = time.perf_counter()
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    step = config.step
    frame = candles_frame(frame, step)
    if len(frame) == 0:
        raise NotEnoughHistory("no candles")
    frame = frame.loc[frame.index[-1] - (config.volatility_steps - 1) * step.step:]
    s = windows.series_from_grid(step_grid(frame, step), interval=step)
    first = max(0, len(s.log_close) - train_steps) if train_steps else 0
    train_o, val_o, split = _origins(s, config, first)
    fitted = sources.fit_all(s, first, split, config.horizon)
    candidates = {name: f.band(s, val_o) for name, f in fitted.items()}
    fit = _learned(s, train_o, val_o, fitted, config, device, stop, progress)
    if fit is not None:
        candidates[config.learned] = fit.val_band
    center = fit.val_center if fit is not None else learned.naive_center(len(val_o), config.horizon)
    ret = windows.log_returns_ahead(s, val_o, config.horizon)
    close = s.close[val_o]
    block = step.bootstrap_block(config.horizon)
    specs, scores = calibrate.choose_served(candidates, ret, close, block=block)
    metrics = _band_metrics(candidates, specs, scores, ret, close, center)
    metrics["band_beaten_at"] = calibrate.beaten_horizons(
        candidates, sources.served_band(candidates, specs), [k for k in sources.YARDSTICKS if k in candidates], ret, close, block)
    serving = sources.fit_all(s, first, len(s.log_close) - 1, config.horizon)
    metrics.update(
        n_train=int(len(train_o)), n_val=int(len(val_o)), epochs=int(fit.epochs if fit else 0),
        device=str(device) if fit else "cpu", train_seconds=round(time.perf_counter() - started, 3),
        shrink=fit.stats["shrink"] if fit else [0.0] * config.horizon, sources=specs)
    stats = {"bands": {name: f.to_dict() for name, f in serving.items()}, "sources": specs,
             **(fit.stats if fit else {})}
    start = s.times[first] if first else frame.index[0]
    meta = {"config": config.to_dict(), "stats": stats, "metrics": metrics,
            "n_features": windows.N_FEATURES, "train_start": start.isoformat(),
            "train_end": frame.index[-1].isoformat()}
    weights = serialize.dump(fit.state if fit else {}, meta)
    return TrainResult(weights, TrainingMetrics.from_dict(metrics), config, start.to_pydatetime(),
                       frame.index[-1].to_pydatetime())
