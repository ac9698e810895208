"""Accuracy figures as one line of text, the same wherever they are shown (the backtest report and
the chart's title; the train message and `forecaster status`), so equal numbers read equal."""
from __future__ import annotations


def accuracy_line(figures: dict) -> str:
    """Scored forecasts (forecaster.metrics.summary): the model next to naive, and its band."""
    return (f"MAE {figures['mae']:.6g} vs naive {figures['naive_mae']:.6g} (rMAE {figures['rmae']:.4f}), "
            f"80% band coverage {figures['coverage']:.3f}, interval score {figures['interval_score']:.6g}")


def validation_line(run) -> str:
    """A model's validation figures, from its metrics dict or its `model_runs` row."""
    get = run.get if isinstance(run, dict) else (lambda k: getattr(run, k, None))
    parts = []
    if get("val_mae") is not None and get("val_naive_mae") is not None:
        parts.append(f"val MAE {get('val_mae'):.6g} vs naive {get('val_naive_mae'):.6g}")
    if get("val_rmae") is not None:
        parts.append(f"rMAE {get('val_rmae'):.4f}")
    if get("val_coverage") is not None:
        parts.append(f"80% coverage {get('val_coverage'):.3f}")
    if get("val_interval_score") is not None and get("val_free_interval_score") is not None:
        parts.append(f"interval score {get('val_interval_score'):.6g} vs best model-free "
                     f"{get('val_free_interval_score'):.6g}")
    return ", ".join(parts) or "no validation figures"
