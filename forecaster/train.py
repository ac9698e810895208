"""Training: candles in, safetensors weights and metrics out. No I/O.

The span is split by time: the last ``val_steps`` steps are the validation slice. Training
samples have every target at or before the split; validation origins are at or after it, so no
target crosses the split (validation inputs may look back into the training part).

1. The volatility model (volatility.py) is fit on the history up to the split; its expected
   h-hour move scales the LSTM's inputs and targets, and its band is where the LSTM starts.
2. The LSTM learns the 10/50/90% quantiles of the scaled h-hour return (pinball loss, early
   stopping on the validation slice).
3. On the validation slice: median shrinkage, conformal band factors, and per horizon the band to
   serve: the volatility model's, unless the LSTM's or a model-free yardstick's (bands.py) has a
   lower interval score out of sample there by more than chance (calibrate.choose_sources).
4. The volatility model is fit again on the whole history for serving.
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

from . import bands, calibrate, serialize, windows
from .config import ModelConfig
from .device import resolve_device
from .errors import NotEnoughHistory, TrainingCancelled
from .frames import candles_frame, step_grid
from .model import QuantileLSTM, pinball_loss
from .volatility import VolatilityModel, fit_volatility

MIN_TRAIN_SAMPLES = 64
MIN_VAL_SAMPLES = 24
SOURCES = ("volatility", "lstm", *bands.YARDSTICKS)  # candidate bands; the first is the default


@dataclass
class TrainResult:
    weights: bytes
    metrics: dict
    config: ModelConfig
    train_start: datetime
    train_end: datetime


@dataclass
class _Samples:
    origins: np.ndarray  # (n,) grid indices
    x: np.ndarray  # (n, L, F)
    z: np.ndarray  # (n, H) targets in units of the volatility model's scale
    ret: np.ndarray  # (n, H) log-returns from the origin
    scale: np.ndarray  # (n, H) the volatility model's expected |h-hour return|
    close: np.ndarray  # (n,) close at the origin


def _samples(s: windows.Series, origins: np.ndarray, cfg: ModelConfig, vol: VolatilityModel) -> _Samples:
    state = windows.origin_state(vol, s, origins)
    x = windows.inputs(s, origins, cfg.lookback, vol, state)
    ret = windows.log_returns_ahead(s, origins, cfg.horizon)
    z = (ret / state.scale).astype(np.float32)
    return _Samples(origins, x, z, ret, state.scale, s.close[origins])


def _split(s: windows.Series, cfg: ModelConfig, first: int):
    """Grid -> (train samples, val samples, volatility model fit up to the split). ``first`` is
    the first grid row the LSTM may use (its training window)."""
    n = len(s.log_close)
    origins = windows.complete_origins(s, cfg.lookback, cfg.horizon, with_targets=True)
    origins = origins[origins - cfg.lookback >= first]
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
    vol = fit_volatility(s.log_close, s.log_range, s.times, cfg.horizon, end=split, interval=cfg.interval)
    vol = _nonzero_tails(vol)
    # the yardsticks need their window of history before the first validation origin too
    return _samples(s, train_o, cfg, vol), _samples(s, val_o, cfg, vol), vol


def _nonzero_tails(vol: VolatilityModel) -> VolatilityModel:
    """The LSTM starts from the volatility band; a quantile of exactly 0 (a coin that often does
    not move for an hour) would start it at a degenerate offset."""
    vol.z = np.stack([np.minimum(vol.z[:, 0], -1e-3), np.maximum(vol.z[:, 1], 1e-3)], axis=1)
    return vol


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
    """Adam with early stopping on the validation pinball loss; keeps the best epoch's weights
    (the starting point counts as epoch 0: the LSTM must beat the volatility band it starts from).
    Returns the number of epochs run."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x, z = torch.from_numpy(tr.x), torch.from_numpy(tr.z)
    xv, zv = torch.from_numpy(va.x), torch.from_numpy(va.z).double()

    def val_loss() -> float:
        return float(pinball_loss(torch.from_numpy(_predict_z(model, xv, device)), zv))

    best, bad, epoch = val_loss(), 0, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for epoch in range(1, cfg.max_epochs + 1):
        if stop is not None and stop.is_set():
            raise TrainingCancelled(f"training stopped before epoch {epoch}")
        train_loss = _epoch(model, opt, x, z, cfg, device, gen)
        loss = val_loss()
        if progress is not None:
            progress(epoch, cfg.max_epochs, train_loss, loss)
        if loss < best - 1e-6:
            best, bad = loss, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if stop is not None and stop.is_set():
        raise TrainingCancelled("training stopped after the last epoch")
    model.load_state_dict(best_state)
    return epoch


def _calibration(z: np.ndarray, va: _Samples, cfg: ModelConfig) -> dict:
    """Shrinkage and conformal factors from validation predictions z (n, H, 3)."""
    shrink = calibrate.choose_shrink(z[..., 1] * va.scale, va.ret, cfg.shrink_grid,
                                     block=cfg.step.bootstrap_block(cfg.horizon))
    center = shrink[None, :] * z[..., 1]
    k_lo, k_up = calibrate.conformal_factors(center, z[..., 1] - z[..., 0], z[..., 2] - z[..., 1], va.z)
    return {"shrink": shrink.tolist(), "k_lo": k_lo.tolist(), "k_up": k_up.tolist()}


def _candidates(z: np.ndarray, va: _Samples, cal: dict, vol: VolatilityModel,
                s: windows.Series) -> dict[str, np.ndarray]:
    """Every band the model could serve, on the validation origins, scored out of sample:
    name -> (n, H, 2) log returns. The LSTM's conformal factors are cross-fitted (calibrate)."""
    center = np.asarray(cal["shrink"])[None, :] * z[..., 1]
    lstm = calibrate.cross_fitted(center, z[..., 1] - z[..., 0], z[..., 2] - z[..., 1], va.z)
    out = {"lstm": lstm * va.scale[..., None], "volatility": va.scale[..., None] * vol.z[None]}
    out.update(bands.yardsticks(s.log_close, va.origins, z.shape[1], s.interval))
    return out


def _band_metrics(candidates: dict, sources: list[str], scores: dict, va: _Samples,
                  center: np.ndarray) -> dict:
    """Validation figures of what will be served, in the quote currency: MAE of the median vs
    naive, and the interval score and coverage of the served band (out of sample, per horizon
    from its source) vs the best model-free band at each horizon, on the same origins."""
    ok = calibrate.usable_rows(candidates, va.ret)
    served = np.stack([candidates[src][:, h] for h, src in enumerate(sources)], axis=1)  # (n, H, 2)
    inside = (va.ret >= served[..., 0]) & (va.ret <= served[..., 1])
    free = np.min([scores[k] for k in bands.YARDSTICKS], axis=0)
    truth = va.close[:, None] * np.exp(va.ret)
    mae = np.abs(va.close[:, None] * np.exp(center) - truth).mean()
    naive = np.abs(va.close[:, None] - truth).mean()
    return {"val_mae": float(mae), "val_naive_mae": float(naive), "val_rmae": float(mae / naive),
            "val_coverage": float(inside[ok].mean()),
            "val_interval_score": float(np.mean([scores[src][h] for h, src in enumerate(sources)])),
            "val_free_interval_score": float(np.mean(free)),
            "val_interval_score_by_source": {k: v.tolist() for k, v in scores.items()},
            "band_source": describe_sources(sources)}


def describe_sources(sources: list[str]) -> str:
    """Runs of horizons per source, e.g. ``lstm 1-3, volatility 4-24``."""
    runs, start = [], 0
    for i in range(1, len(sources) + 1):
        if i == len(sources) or sources[i] != sources[start]:
            runs.append(f"{sources[start]} {start + 1}" + (f"-{i}" if i - start > 1 else ""))
            start = i
    return ", ".join(runs)


def train(frame: pd.DataFrame, config: ModelConfig, device: torch.device | str = "cpu", *,
          train_steps: int | None = None, stop=None,
          progress: Callable[[int, int, float, float], None] | None = None) -> TrainResult:
    """Train on the rows of ``frame`` (the caller picks the window): the volatility model on the
    last ``config.volatility_steps`` of it, the LSTM on the last ``train_steps`` (default: all),
    in steps of ``config.interval``. Raises NotEnoughHistory if too little complete data,
    TrainingCancelled if ``stop`` (an Event-like) is set."""
    started = time.perf_counter()
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    step = config.step
    frame = candles_frame(frame, step)
    if len(frame) == 0:
        raise NotEnoughHistory("no candles")
    frame = frame.loc[frame.index[-1] - (config.volatility_steps - 1) * step.step:]
    s = windows.series_from_grid(step_grid(frame, step), interval=step)
    first = max(0, len(s.log_close) - train_steps) if train_steps else 0
    tr, va, vol_val = _split(s, config, first)
    gen = _seed(config.seed)
    model = QuantileLSTM(windows.N_FEATURES, config.hidden_size, config.num_layers,
                         config.dropout, config.horizon, config.patch).to(device)
    model.start_from(torch.tensor(vol_val.z[:, 0], dtype=torch.float32),
                     torch.tensor(vol_val.z[:, 1], dtype=torch.float32))
    epochs = _fit(model, tr, va, config, device, gen, stop, progress)
    z = _predict_z(model, torch.from_numpy(va.x), device)
    cal = _calibration(z, va, config)
    candidates = _candidates(z, va, cal, vol_val, s)
    block = step.bootstrap_block(config.horizon)
    sources, scores = calibrate.choose_sources({k: candidates[k] for k in SOURCES}, va.ret, va.close,
                                               default="volatility", block=block)
    center = np.asarray(cal["shrink"])[None, :] * z[..., 1] * va.scale
    metrics = _band_metrics(candidates, sources, scores, va, center)
    metrics["band_beaten_at"] = calibrate.beaten_horizons(candidates, sources, list(bands.YARDSTICKS),
                                                          va.ret, va.close, block)
    vol = _nonzero_tails(fit_volatility(s.log_close, s.log_range, s.times, config.horizon, interval=step))
    metrics.update(
        n_train=int(len(tr.x)), n_val=int(len(va.x)), epochs=int(epochs), device=str(device),
        train_seconds=round(time.perf_counter() - started, 3), shrink=cal["shrink"], sources=sources)
    stats = {**cal, "volatility": vol.to_dict(), "sources": sources}
    start = s.times[first] if first else frame.index[0]
    meta = {"config": config.to_dict(), "stats": stats, "metrics": metrics,
            "n_features": windows.N_FEATURES, "train_start": start.isoformat(),
            "train_end": frame.index[-1].isoformat()}
    weights = serialize.dump(model.state_dict(), meta)
    return TrainResult(weights, metrics, config, start.to_pydatetime(), frame.index[-1].to_pydatetime())
