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
        parts.append(f"interval score {get('val_interval_score'):.6g} vs best yardstick "
                     f"{get('val_free_interval_score'):.6g}")
    return ", ".join(parts) or "no validation figures"


def band_verdict(metrics: dict) -> str:
    """What the served band's validation interval score says next to the best yardstick's, in words
    that match the figures: better or worse by how much, and whether any horizon is worse beyond
    chance (the gate's test)."""
    served, free = metrics.get("val_interval_score"), metrics.get("val_free_interval_score")
    if served is None or not free:
        return "band not compared with the yardsticks"
    change = served / free - 1
    side = f"{abs(change):.1%} {'better' if change <= 0 else 'worse'} than the best yardstick"
    if metrics.get("band_beaten_at"):
        return f"band {side}, beaten beyond chance at horizons {metrics['band_beaten_at']}"
    return f"band {side}" + ("" if change <= 0 else ", within chance at every horizon")
