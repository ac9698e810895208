"""Models as safetensors bytes: plain CPU tensors plus JSON metadata (config, scaling and
calibration statistics, metrics). Loading never unpickles anything."""
from __future__ import annotations

import json
import struct

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import OutdatedModel

# /3: every band source fitted and stored (sources.py), the LSTM optional (no tensors without it);
# /2: inputs and targets scaled by the volatility model
FORMAT = "forecaster-bands/3"
_OLDER_FORMATS = ("forecaster-quantile-lstm/1", "forecaster-quantile-lstm/2")


def dump(state_dict: dict[str, torch.Tensor], meta: dict) -> bytes:
    """Tensors (moved to CPU) and a JSON-able dict -> safetensors bytes."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    metadata = {"format": FORMAT, **{k: json.dumps(v) for k, v in meta.items()}}
    return st_save(tensors, metadata=metadata)


def read_metadata(blob: bytes) -> dict:
    """The metadata of safetensors bytes, each value decoded from JSON."""
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + size])
    raw = header.get("__metadata__", {})
    if raw.get("format") in _OLDER_FORMATS:
        raise OutdatedModel(f"model format {raw['format']!r} is from an older release: train the market again")
    if raw.get("format") != FORMAT:
        raise ValueError(f"not a forecaster model (format {raw.get('format')!r})")
    return {k: json.loads(v) for k, v in raw.items() if k != "format"}


def load(blob: bytes) -> tuple[dict[str, torch.Tensor], dict]:
    """safetensors bytes -> (CPU state dict, metadata dict)."""
    return st_load(blob), read_metadata(blob)
