"""Accuracy figures as one line of text, the same wherever they are shown (the backtest report and
the chart's title; the train message and `forecaster status`), so equal numbers read equal."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.records import TrainingMetrics


def money(value: float) -> str:
    """A price-scale figure to 6 significant digits, thousands grouped and never in exponent form:
    `29.8798`, `3,565.80`, `1,134,060` (KRW errors read as `1.13406e+06` with `:.6g`)."""
    if value is None or not math.isfinite(value) or abs(value) < 1000:
        return f"{value:.6g}" if value is not None else "-"
    return f"{value:,.{max(0, 5 - math.floor(math.log10(abs(value))))}f}"


def accuracy_line(figures: dict) -> str:
    """Scored forecasts (forecaster.metrics.summary): the model next to naive, and its band."""
    return (f"MAE {money(figures['mae'])} vs naive {money(figures['naive_mae'])} (rMAE {figures['rmae']:.4f}), "
            f"80% band coverage {figures['coverage']:.3f}, interval score {money(figures['interval_score'])}")


def validation_line(run) -> str:
    """A model's validation figures, from its TrainingMetrics, its `model_runs` row or the status
    report's dict of that row."""
    get = run.get if isinstance(run, dict) else (lambda k: getattr(run, k, None))
    parts = []
    if get("val_mae") is not None and get("val_naive_mae") is not None:
        parts.append(f"val MAE {money(get('val_mae'))} vs naive {money(get('val_naive_mae'))}")
    if get("val_rmae") is not None:
        parts.append(f"rMAE {get('val_rmae'):.4f}")
    if get("val_coverage") is not None:
        parts.append(f"80% coverage {get('val_coverage'):.3f}")
    if get("val_interval_score") is not None and get("val_free_interval_score") is not None:
        parts.append(f"interval score {money(get('val_interval_score'))} vs best yardstick "
                     f"{money(get('val_free_interval_score'))}")
    return ", ".join(parts) or "no validation figures"


def band_verdict(metrics: TrainingMetrics) -> str:
    """What the served band's validation interval score says next to the best yardstick's, in words
    that match the figures: better or worse by how much, and whether any horizon is worse beyond
    chance (the gate's test)."""
    served, free = metrics.val_interval_score, metrics.val_free_interval_score
    if served is None or not free:
        return "band not compared with the yardsticks"
    change = served / free - 1
    side = f"{abs(change):.1%} {'better' if change <= 0 else 'worse'} than the best yardstick"
    if metrics.band_beaten_at:
        return f"band {side}, beaten beyond chance at horizons {metrics.band_beaten_at}"
    return f"band {side}" + ("" if change <= 0 else ", within chance at every horizon")
