"""Choosing the torch device once, at start, from a name such as ``FORECASTER_DEVICE``."""
from __future__ import annotations

import re

import torch

_NAMES = "auto, cpu, cuda, cuda:N, mps"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a usable ``torch.device``.

    ``auto`` picks CUDA, then MPS, then the CPU. A malformed name or a device that is not
    available raises ``ValueError`` naming ``FORECASTER_DEVICE``.
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = (name or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise ValueError("FORECASTER_DEVICE=mps but MPS is not available on this machine")
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise ValueError(f"FORECASTER_DEVICE={name!r} is not one of: {_NAMES}")
    if not torch.cuda.is_available():
        raise ValueError(f"FORECASTER_DEVICE={name!r} but CUDA is not available on this machine")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"FORECASTER_DEVICE={name!r} but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return torch.device(f"cuda:{index}")
