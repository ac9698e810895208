"""The optional learned band: a quantile LSTM per market on top of the volatility model.

Off by default (``ModelConfig.learned = "none"``): on the seven development series it was served
at a few horizons of a few fits only and never moved the mean interval score by 0.01, while it took
~90% of a training (docs/forecasting.md). ``learned = "lstm"`` trains it as before:

1. the volatility model's expected h-step move scales the LSTM's inputs and targets, and its band
   is where the LSTM starts;
2. the LSTM learns the 10/50/90% quantiles of the scaled h-step return (pinball loss, early
   stopping on the validation slice);
3. on the validation slice: median shrinkage and conformal band factors, and a band scored
   out of sample (cross-fitted conformal) beside the other sources.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from . import calibrate, windows
from .config import ModelConfig
from .errors import TrainingCancelled
from .learned import LearnedFit
from .model import QuantileLSTM, pinball_loss
from .volatility import VolatilityModel


@dataclass
class Samples:
    origins: np.ndarray  # (n,) grid indices
    x: np.ndarray  # (n, L, F)
    z: np.ndarray  # (n, H) targets in units of the volatility model's scale
    ret: np.ndarray  # (n, H) log-returns from the origin
    scale: np.ndarray  # (n, H) the volatility model's expected |h-step return|


def samples(s: windows.Series, origins: np.ndarray, cfg: ModelConfig, vol: VolatilityModel) -> Samples:
    state = windows.origin_state(vol, s, origins)
    x = windows.inputs(s, origins, cfg.lookback, vol, state)
    ret = windows.log_returns_ahead(s, origins, cfg.horizon)
    return Samples(origins, x, (ret / state.scale).astype(np.float32), ret, state.scale)


def _seed(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _autocast(device: torch.device):
    """bf16 autocast on CUDA only; full precision elsewhere (CPU results stay exact)."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def predict_z(model, x: torch.Tensor, device: torch.device, batch: int = 2048) -> np.ndarray:
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


def _fit(model, tr: Samples, va: Samples, cfg, device, gen, stop, progress) -> int:
    """AdamW with early stopping on the validation pinball loss; keeps the best epoch's weights
    (the starting point counts as epoch 0: the LSTM must beat the volatility band it starts from).
    Returns the number of epochs run."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x, z = torch.from_numpy(tr.x), torch.from_numpy(tr.z)
    xv, zv = torch.from_numpy(va.x), torch.from_numpy(va.z).double()

    def val_loss() -> float:
        return float(pinball_loss(torch.from_numpy(predict_z(model, xv, device)), zv))

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


def build(config: ModelConfig, n_features: int = windows.N_FEATURES) -> QuantileLSTM:
    return QuantileLSTM(n_features, config.hidden_size, config.num_layers, config.dropout, config.horizon,
                        config.patch)


@dataclass
class LstmFit:
    model: QuantileLSTM
    epochs: int
    calibration: dict  # shrink, k_lo, k_up (H,) lists
    val_band: np.ndarray  # (n, H, 2) cross-fitted conformal band, log returns
    val_center: np.ndarray  # (n, H) shrunk median, log returns


def train_lstm(tr: Samples, va: Samples, vol: VolatilityModel, cfg: ModelConfig, device, *, stop=None,
               progress=None) -> LstmFit:
    gen = _seed(cfg.seed)
    model = build(cfg).to(device)
    model.start_from(torch.tensor(vol.z[:, 0], dtype=torch.float32), torch.tensor(vol.z[:, 1], dtype=torch.float32))
    epochs = _fit(model, tr, va, cfg, device, gen, stop, progress)
    z = predict_z(model, torch.from_numpy(va.x), device)
    shrink = calibrate.choose_shrink(z[..., 1] * va.scale, va.ret, cfg.shrink_grid,
                                     block=cfg.step.bootstrap_block(cfg.horizon))
    center = shrink[None, :] * z[..., 1]
    k_lo, k_up = calibrate.conformal_factors(center, z[..., 1] - z[..., 0], z[..., 2] - z[..., 1], va.z)
    band = calibrate.cross_fitted(center, z[..., 1] - z[..., 0], z[..., 2] - z[..., 1], va.z)
    cal = {"shrink": shrink.tolist(), "k_lo": k_lo.tolist(), "k_up": k_up.tolist()}
    return LstmFit(model, epochs, cal, band * va.scale[..., None], center * va.scale)


def lstm_quantiles(model, stats: dict, s: windows.Series, origins: np.ndarray, lookback: int,
                   vol: VolatilityModel, device) -> tuple[np.ndarray, np.ndarray]:
    """At forecast time: (band (n, H, 2), median (n, H)) in log returns from the origins."""
    state = windows.origin_state(vol, s, origins)
    x = windows.inputs(s, origins, lookback, vol, state)
    with torch.inference_mode():
        z = model(torch.from_numpy(x).to(device)).float().cpu().numpy().astype(np.float64)
    lower, center, upper = calibrate.apply(z, *(np.asarray(stats[k], float) for k in ("shrink", "k_lo", "k_up")))
    return np.stack([lower, upper], axis=-1) * state.scale[..., None], center * state.scale


class LstmLearner:
    """The quantile LSTM behind the learned-model seam (learned.py)."""

    name = "lstm"

    def train(self, s: windows.Series, train_origins: np.ndarray, val_origins: np.ndarray, fitted: dict,
              config: ModelConfig, device, *, stop=None, progress=None) -> LearnedFit:
        vol = fitted["volatility"].model
        tr, va = samples(s, train_origins, config, vol), samples(s, val_origins, config, vol)
        fit = train_lstm(tr, va, vol, config, device, stop=stop, progress=progress)
        return LearnedFit(fit.model.state_dict(), fit.epochs, fit.calibration, fit.val_band, fit.val_center)

    def load(self, config: ModelConfig, state: dict, n_features: int, device) -> QuantileLSTM:
        model = build(config, n_features)
        model.load_state_dict(state)
        return model.to(device).eval()

    def quantiles(self, network: QuantileLSTM, stats: dict, s: windows.Series, origins: np.ndarray,
                  config: ModelConfig, fitted: dict, device) -> tuple[np.ndarray, np.ndarray]:
        return lstm_quantiles(network, stats, s, origins, config.lookback, fitted["volatility"].model, device)


LSTM = LstmLearner()
