"""FORECASTER_MODEL_OVERRIDES: a JSON object of ModelConfig fields, checked at start.

ModelConfig checks the shape of the network (lookback, patch, sizes) but takes any value for the
optimiser's fields, so `{"lr": "fast"}` or `{"batch_size": 0}` used to pass the start and fail an
hour later inside a training with a traceback. Here every value must have its field's type and lie
in the range a training can use; the reason names the field.
"""
from __future__ import annotations

import json
import math
from dataclasses import fields

EXAMPLE = '{"hidden_size": 8, "max_epochs": 2}'
# (lowest, highest, lowest allowed?) for the fields ModelConfig does not check itself.
RANGES: dict[str, tuple[float, float | None, bool]] = {
    "batch_size": (1, None, True),
    "patience": (1, None, True),
    "max_epochs": (1, 100_000, True),
    "hidden_size": (1, 4096, True),
    "num_layers": (1, 16, True),
    "lr": (0.0, 10.0, False),
    "weight_decay": (0.0, None, True),
    "grad_clip": (0.0, None, False),
    "dropout": (0.0, 1.0, True),
    "shrink_grid": (1, 10_000, True),
    "lookback": (2, 24 * 366, True),
    "val_steps": (2, 24 * 3660, True),
    "volatility_steps": (2, 4 * 24 * 3660, True),
    "seed": (0, 2**32 - 1, True),  # NumPy's seed range: -1 failed every training (np.random.seed)
}


def parse_model_overrides(text: str) -> dict:
    """The overrides as a dict, or ValueError saying which field is wrong and why."""
    from forecaster.config import RENAMED, ModelConfig

    if not text.strip():
        return {}
    try:
        overrides = json.loads(text)
    except ValueError:
        raise ValueError(f"not JSON: expected an object such as {EXAMPLE}") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"expected a JSON object such as {EXAMPLE}")
    overrides = {RENAMED.get(k, k): v for k, v in overrides.items()}  # older names still read
    types = {f.name: f.type for f in fields(ModelConfig)}
    # the horizon comes from FORECASTER_HORIZON, the interval from the market
    known = set(types) - {"horizon", "interval"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown model setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for name, value in overrides.items():
        _check_value(name, value, types[name])
    return overrides


def _check_value(name: str, value, type_name) -> None:
    kind = type_name if isinstance(type_name, str) else type_name.__name__
    if isinstance(value, bool) or (kind == "int" and not isinstance(value, int)) \
            or (kind == "float" and not isinstance(value, (int, float))):
        raise ValueError(f"{name} must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}")
    if kind == "float" and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if name in RANGES:
        low, high, low_included = RANGES[name]
        too_low = value < low if low_included else value <= low
        if too_low or (high is not None and value > high):
            bound = f">= {low}" if low_included else f"> {low}"
            if high is not None:
                bound += f" and <= {high}"
            raise ValueError(f"{name} must be {bound}, got {value!r}")
