"""The LSTM: shapes, non-crossing quantiles, pinball loss."""
from __future__ import annotations

import torch

from forecaster.model import QuantileLSTM, pinball_loss


def test_output_shape_and_monotone_quantiles():
    torch.manual_seed(0)
    model = QuantileLSTM(input_size=6, hidden_size=8, num_layers=2, dropout=0.1, horizon=5, patch=4)
    out = model(torch.randn(7, 24, 6) * 5)
    assert out.shape == (7, 5, 3)
    assert torch.all(out[..., 0] < out[..., 1]) and torch.all(out[..., 1] < out[..., 2])


def test_pinball_loss_is_asymmetric_at_the_tails():
    y = torch.zeros(1, 1)
    pred = torch.tensor([[[1.0, 1.0, 1.0]]])  # everything above the truth
    # q=0.1 above truth costs 0.9, q=0.5 costs 0.5, q=0.9 costs 0.1 -> mean 0.5
    assert torch.isclose(pinball_loss(pred, y), torch.tensor(0.5))
    low = torch.tensor([[[-1.0, 0.0, 1.0]]])
    assert torch.isclose(pinball_loss(low, y), torch.tensor((0.1 + 0 + 0.1) / 3))
