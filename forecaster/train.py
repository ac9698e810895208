"""Training: candles of one training span in, safetensors weights and metrics out. No I/O.

The span is split by time: the last ``val_hours`` hours are the validation slice. Training
samples have every target at or before the split; validation origins are at or after it, so no
target crosses the split (validation inputs may look back into the training part). Early
stopping, the median shrinkage and the band calibration use the validation slice only.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import numpy as np
import pandas as pd
import torch

from . import calibrate, scaling, serialize, windows
from .config import ModelConfig
from .device import resolve_device
from .errors import NotEnoughHistory, TrainingCancelled
from .frames import candles_frame, hourly_grid
from .model import QuantileLSTM, pinball_loss

MIN_TRAIN_SAMPLES = 64
MIN_VAL_SAMPLES = 24


@dataclass
class TrainResult:
    weights: bytes
    metrics: dict
    config: ModelConfig
    train_start: datetime
    train_end: datetime


@dataclass
class _Samples:
    x: np.ndarray  # (n, L, F)
    z: np.ndarray  # (n, H) unit-free targets
    ret: np.ndarray  # (n, H) log-returns from the origin
    sigma: np.ndarray  # (n,)
    close: np.ndarray  # (n,) close at the origin
    units: np.ndarray  # (n, H) seasonal horizon units (scaling.horizon_units)


def _samples(s: windows.Series, origins: np.ndarray, cfg: ModelConfig, sigma_train: float,
             season: np.ndarray):
    x, sigma = windows.inputs(s, origins, cfg.lookback, sigma_train)
    ret = windows.log_returns_ahead(s, origins, cfg.horizon)
    units = scaling.horizon_units(s.times.hour.to_numpy()[origins], cfg.horizon, season)
    z = scaling.scale_targets(ret, sigma, units).astype(np.float32)
    return _Samples(x, z, ret, sigma, np.exp(s.log_close[origins]), units)


def _split(frame: pd.DataFrame, cfg: ModelConfig):
    """Hourly grid of the span -> (train samples, val samples, sigma_train, season)."""
    s = windows.series_from_grid(hourly_grid(frame))
    origins = windows.complete_origins(s, cfg.lookback, cfg.horizon, with_targets=True)
    split = len(s.log_close) - 1 - cfg.val_hours  # grid index of the split hour
    train_o = origins[origins + cfg.horizon <= split]
    val_o = origins[origins >= split]
    if len(train_o) < MIN_TRAIN_SAMPLES or len(val_o) < MIN_VAL_SAMPLES:
        need = cfg.lookback + cfg.horizon + MIN_TRAIN_SAMPLES + cfg.val_hours
        raise NotEnoughHistory(
            f"{len(frame)} candles give {len(train_o)} complete training and {len(val_o)} "
            f"validation windows; need at least {MIN_TRAIN_SAMPLES} and {MIN_VAL_SAMPLES} "
            f"(about {need}+ gap-free hours for lookback={cfg.lookback}, "
            f"horizon={cfg.horizon}, val_hours={cfg.val_hours})")
    sigma_train = scaling.span_sigma(s.returns[: split + 1])
    # intraday factors from the whole span (all <= its last candle): the validation half is the
    # most recent and the pattern drifts; 24 shrunk factors from 4320 h hardly overfit it
    season = scaling.seasonal_factors(s.returns, s.times.hour.to_numpy())
    return (_samples(s, train_o, cfg, sigma_train, season),
            _samples(s, val_o, cfg, sigma_train, season), sigma_train, season)


def _seed(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _autocast(device: torch.device):
    """bf16 autocast on CUDA only; full precision elsewhere (CPU results stay exact)."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def _predict_z(model, x: torch.Tensor, device: torch.device, batch: int = 2048) -> np.ndarray:
    model.eval()
    outs = []
    with torch.inference_mode(), _autocast(device):
        for i in range(0, len(x), batch):
            outs.append(model(x[i:i + batch].to(device)).float().cpu())
    return torch.cat(outs).numpy().astype(np.float64)  # (n, H, 3)


def _epoch(model, opt, x, z, cfg, device, gen) -> float:
    model.train()
    order = torch.randperm(len(x), generator=gen)
    total = 0.0
    for i in range(0, len(x), cfg.batch_size):
        idx = order[i:i + cfg.batch_size]
        xb, zb = x[idx].to(device), z[idx].to(device)
        with _autocast(device):
            loss = pinball_loss(model(xb), zb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        total += float(loss.detach()) * len(idx)
    return total / len(x)


def _fit(model, tr: _Samples, va: _Samples, cfg, device, gen, stop, progress) -> int:
    """Adam with early stopping on the validation pinball loss; keeps the best epoch's weights.
    Returns the number of epochs run."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x, z = torch.from_numpy(tr.x), torch.from_numpy(tr.z)
    xv, zv = torch.from_numpy(va.x), torch.from_numpy(va.z).double()
    best, best_state, bad, epoch = float("inf"), None, 0, 0
    for epoch in range(1, cfg.max_epochs + 1):
        if stop is not None and stop.is_set():
            raise TrainingCancelled(f"training stopped before epoch {epoch}")
        train_loss = _epoch(model, opt, x, z, cfg, device, gen)
        val_loss = float(pinball_loss(torch.from_numpy(_predict_z(model, xv, device)), zv))
        if progress is not None:
            progress(epoch, cfg.max_epochs, train_loss, val_loss)
        if val_loss < best - 1e-6:
            best, bad = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if stop is not None and stop.is_set():
        raise TrainingCancelled("training stopped after the last epoch")
    if best_state is not None:  # None only if every validation loss was NaN
        model.load_state_dict(best_state)
    return epoch


def _calibration(z: np.ndarray, va: _Samples, cfg: ModelConfig) -> dict:
    """Shrinkage and conformal factors from validation predictions z (n, H, 3)."""
    scale = scaling.target_scale(va.sigma, cfg.horizon, va.units)
    shrink = calibrate.choose_shrink(z[..., 1] * scale, va.ret, cfg.shrink_grid)
    center = shrink[None, :] * z[..., 1]
    k_lo, k_up = calibrate.conformal_factors(center, z[..., 1] - z[..., 0],
                                             z[..., 2] - z[..., 1], va.z)
    return {"shrink": shrink.tolist(), "k_lo": k_lo.tolist(), "k_up": k_up.tolist()}


def _val_metrics(z: np.ndarray, va: _Samples, cal: dict) -> dict:
    """Accuracy of the calibrated forecaster on the validation slice (prices; the coverage
    is in-sample for the calibration, so about 0.8 by construction)."""
    shrink, k_lo, k_up = (np.asarray(cal[k]) for k in ("shrink", "k_lo", "k_up"))
    lower, center, upper = calibrate.apply(z, shrink, k_lo, k_up)
    scale = scaling.target_scale(va.sigma, z.shape[1], va.units)
    truth = va.close[:, None] * np.exp(va.ret)
    mae = np.abs(va.close[:, None] * np.exp(center * scale) - truth).mean()
    raw = np.abs(va.close[:, None] * np.exp(z[..., 1] * scale) - truth).mean()
    naive = np.abs(va.close[:, None] - truth).mean()
    return {"val_mae": float(mae), "val_naive_mae": float(naive), "val_rmae": float(mae / naive),
            "val_rmae_unshrunk": float(raw / naive),
            "val_coverage": float(((va.z >= lower) & (va.z <= upper)).mean()),
            "val_coverage_uncalibrated": float(((va.z >= z[..., 0]) & (va.z <= z[..., 2])).mean())}


def train(frame: pd.DataFrame, config: ModelConfig, device: torch.device | str = "cpu", *,
          stop=None, progress: Callable[[int, int, float, float], None] | None = None) -> TrainResult:
    """Train on ALL rows of ``frame`` (the caller picks the window). Raises NotEnoughHistory if
    too little complete data, TrainingCancelled if ``stop`` (an Event-like) is set."""
    started = time.perf_counter()
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    frame = candles_frame(frame)
    tr, va, sigma_train, season = _split(frame, config)
    gen = _seed(config.seed)
    model = QuantileLSTM(windows.N_FEATURES, config.hidden_size, config.num_layers,
                         config.dropout, config.horizon, config.patch).to(device)
    epochs = _fit(model, tr, va, config, device, gen, stop, progress)
    z = _predict_z(model, torch.from_numpy(va.x), device)
    cal = _calibration(z, va, config)
    metrics = _val_metrics(z, va, cal)
    metrics.update(
        n_train=int(len(tr.x)), n_val=int(len(va.x)), epochs=int(epochs), device=str(device),
        train_seconds=round(time.perf_counter() - started, 3), shrink=cal["shrink"])
    stats = {"sigma_train": sigma_train, "season": season.tolist(), **cal}
    meta = {"config": config.to_dict(), "stats": stats,
            "metrics": metrics, "n_features": windows.N_FEATURES,
            "train_start": frame.index[0].isoformat(), "train_end": frame.index[-1].isoformat()}
    weights = serialize.dump(model.state_dict(), meta)
    return TrainResult(weights, metrics, config, frame.index[0].to_pydatetime(),
                       frame.index[-1].to_pydatetime())
