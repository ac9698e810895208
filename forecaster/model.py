"""The LSTM quantile forecaster (imports only torch)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import QUANTILES


class QuantileLSTM(nn.Module):
    """LSTM that reads a lookback window and outputs, directly for every horizon, the
    quantiles 0.1, 0.5, 0.9 of the unit-free log-return from the origin.

    Quantiles never cross: the median is free, the 0.1 and 0.9 quantiles are the median minus /
    plus a softplus offset.

    Args:
        input_size: features per hour of the lookback.
        hidden_size: LSTM hidden units.
        num_layers: stacked LSTM layers.
        dropout: dropout between LSTM layers and before the head.
        horizon: hours forecast (outputs per quantile).
        patch: hours read as one LSTM step (the lookback must be a multiple of it).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float,
                 horizon: int, patch: int = 1):
        super().__init__()
        self.horizon, self.patch = horizon, patch
        self.lstm = nn.LSTM(input_size * patch, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, horizon * len(QUANTILES))
        with torch.no_grad():  # start near a median of 0 and a band of about +-1.3 units
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
            self.head.bias[horizon:].fill_(1.0)

    def start_from(self, lower: torch.Tensor, upper: torch.Tensor) -> None:
        """Start training from a known band: quantile offsets ``lower`` < 0 < ``upper`` (H,) in
        target units (the volatility model's band), so the LSTM learns corrections to it."""
        with torch.no_grad():
            h = self.horizon
            self.head.bias[h:2 * h] = _softplus_inverse(-lower.clamp(max=-1e-3))
            self.head.bias[2 * h:] = _softplus_inverse(upper.clamp(min=1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, input_size) -> (B, horizon, 3) quantiles 0.1, 0.5, 0.9."""
        b, length, f = x.shape
        steps = x.reshape(b, length // self.patch, self.patch * f)  # (B, L/patch, patch*F)
        out, _ = self.lstm(steps)  # (B, L/patch, hidden)
        last = self.drop(out[:, -1, :])  # (B, hidden)
        raw = self.head(last).float()  # (B, 3 * horizon)
        med, lo, hi = raw.view(-1, 3, self.horizon).unbind(dim=1)  # 3 x (B, horizon)
        lower = med - F.softplus(lo)  # (B, horizon)
        upper = med + F.softplus(hi)  # (B, horizon)
        return torch.stack([lower, med, upper], dim=-1)  # (B, horizon, 3)


def _softplus_inverse(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


def pinball_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean pinball (quantile) loss. pred: (B, H, 3), y: (B, H) -> scalar."""
    q = torch.tensor(QUANTILES, dtype=pred.dtype, device=pred.device)  # (3,)
    err = y.unsqueeze(-1) - pred  # (B, H, 3)
    return torch.maximum(q * err, (q - 1) * err).mean()
