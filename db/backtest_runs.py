"""Queries on `backtest_runs` and `backtest_horizons`: what each backtest was asked, when and by which
code it ran, and what it scored. Functions take the session as a keyword and never commit."""
from __future__ import annotations

import json
import math
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.market import Market
from core.names import YARDSTICKS  # forecaster.sources.YARDSTICKS, as stored columns
from db.market_key import market_columns, market_filter
from db.models import BacktestHorizon, BacktestRun

if TYPE_CHECKING:
    from core.records import BacktestSummary

SETTINGS = ("days", "step", "retrain_every", "train_hours", "horizon")
FIGURES = ("mae", "naive_mae", "rmae", "coverage", "interval_score",
           *(f"{name}_{figure}" for name in YARDSTICKS for figure in ("interval_score", "coverage")),
           "best_free_interval_score")


def _number(value):
    """A float for the database; NaN (an undefined ratio) is stored as NULL."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def record_backtest_run(*, session: Session, market: Market, started_at: datetime,
                        finished_at: datetime, settings: dict, config: dict, code_version: str, device: str,
                        summary: BacktestSummary, table: pd.DataFrame, origins: pd.DatetimeIndex) -> int:
    """Insert the run and its per-horizon table; returns the run's id for its prediction rows."""
    ratio = summary.ratio or {}
    sources = [s for s in summary.sources if s]
    run = BacktestRun(
        **market_columns(market), started_at=started_at, finished_at=finished_at,
        **{k: int(settings[k]) for k in SETTINGS}, config=json.dumps(config, sort_keys=True),
        code_version=code_version[:64], device=device,
        first_origin=origins.min().to_pydatetime() if len(origins) else None,
        last_origin=origins.max().to_pydatetime() if len(origins) else None,
        n_origins=summary.n_origins, n_fits=summary.n_fits,
        fit_seconds=_number(summary.fit_seconds), n=summary.figures.get("n"),
        **{k: _number(summary.figures.get(k)) for k in FIGURES},
        ratio_vs_empirical=_number(ratio.get("ratio")), ratio_low=_number(ratio.get("low")),
        ratio_high=_number(ratio.get("high")), ratio_days=ratio.get("blocks"),
        band_sources=" | ".join(sources) or None)
    session.add(run)
    session.flush()
    rows = [{"backtest_run_id": run.id, "horizon": int(r["horizon"]), "n": int(r["n"]),
             **{k: _number(r.get(k)) for k in FIGURES}} for r in table.to_dict("records")]
    if rows:
        session.execute(insert(BacktestHorizon), rows)
    return run.id


def last_backtest_run(*, session: Session, market: Market) -> BacktestRun | None:
    return session.scalars(select(BacktestRun)
                           .where(*market_filter(BacktestRun, market))
                           .order_by(BacktestRun.started_at.desc(), BacktestRun.id.desc()).limit(1)).first()
