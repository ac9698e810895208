"""The backtest job: the contract's walk-forward evaluation on stored candles, written as
`kind = 'backtest'` rows that point to a `backtest_runs` row (settings, when, code version, summary
and per-horizon table), and reported per horizon next to the naive forecast. A later backtest over
the same origins supersedes these rows; they stay in `prediction_history`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pandas as pd

from core.market import Market
from core.names import ForecastKind, Job, YARDSTICKS as STORED_YARDSTICKS
from db.backtest_runs import record_backtest_run
from db.candles import load_frame, newest_open_time
from db.predictions import write_predictions
from jobs.errors import JobError
from jobs.figures import accuracy_line
from jobs.progress import progress
from jobs.recording import recorded
from jobs.version import code_version

if TYPE_CHECKING:
    from core.records import BacktestSummary
    from jobs.bootstrap import Services


# every yardstick stored (the same tuple as forecaster.sources.YARDSTICKS, a test holds them equal), with
# its column label
YARDSTICKS = tuple((name, "emp" if name == "empirical" else name) for name in STORED_YARDSTICKS)


@dataclass
class BacktestOutcome:
    market: Market
    table: pd.DataFrame
    summary: BacktestSummary
    backtest_run_id: int | None = None

    def report(self) -> str:
        s, figures = self.summary, self.summary.figures
        ratio = s.ratio or {}
        sources = sorted(set(filter(None, s.sources)))
        run = f" (backtest run {self.backtest_run_id})" if self.backtest_run_id is not None else ""
        lines = [f"walk-forward backtest of {self.market}{run}: {s.n_origins} origins, {s.n_fits} fits, "
                 f"fit time {s.fit_seconds:.1f}s",
                 _format_table(self.table),
                 f"all horizons: {accuracy_line(figures)}; "
                 + ", ".join(f"{short} {figures[name + '_interval_score']:.6g} "
                             f"(coverage {figures[name + '_coverage']:.3f})"
                             for name, short in YARDSTICKS if name + "_interval_score" in figures)]
        if ratio:
            lines.append(f"interval score / empirical band's, mean over horizons: {ratio['ratio']:.3f} "
                         f"(90% block-bootstrap interval, {ratio['blocks']} blocks of {ratio['block']}: "
                         f"{ratio['low']:.3f}-{ratio['high']:.3f}; below 1 is better)")
        if sources:
            lines.append("band served per horizon, by fit: " + " | ".join(sources))
        return "\n".join(lines)


def _format_table(table: pd.DataFrame) -> str:
    """Per horizon: the model next to naive, then each yardstick's interval score and coverage."""
    head = f"{'h':>3} {'n':>5} {'MAE':>11} {'naive MAE':>11} {'rMAE':>7} {'cover':>6} {'IS':>11}"
    names = [(name, short) for name, short in YARDSTICKS if f"{name}_interval_score" in table]
    head += "".join(f" {'IS ' + short:>11} {'cov':>5}" for _, short in names) + f" {'IS/best':>7}"
    rows = [head]
    for r in table.to_dict("records"):
        line = (f"{r['horizon']:>3} {r['n']:>5} {r['mae']:>11.6g} {r['naive_mae']:>11.6g} {r['rmae']:>7.4f} "
                f"{r['coverage']:>6.3f} {r['interval_score']:>11.6g}")
        line += "".join(f" {r[name + '_interval_score']:>11.6g} {r[name + '_coverage']:>5.3f}" for name, _ in names)
        best = r.get("best_free_interval_score")
        line += f" {r['interval_score'] / best:>7.3f}" if best else ""
        rows.append(line)
    return "\n".join(rows)


def backtest_market(services: Services, market: Market, *, days: int, step: int, retrain_every: int, train_hours: int,
                    horizon: int, config=None, stop=None) -> BacktestOutcome:
    from forecaster.backtest import history_steps, plan_walk_forward, walk_forward
    from forecaster.device import resolve_device
    from forecaster.errors import NotEnoughHistory
    from jobs.train import model_config

    sessions = services.sessions
    config = config or model_config(services.settings, market.interval)
    device = resolve_device(services.settings.device)
    started = datetime.now(timezone.utc)
    with recorded(sessions, Job.BACKTEST, market) as record:
        with sessions() as s:
            newest = newest_open_time(session=s, market=market)
            if newest is None:
                raise JobError(f"{market}: no candles stored yet")
            # Only what the first fit and the last target need: (first origin - train window, L].
            step_length = market.period.step
            since = newest - step_length * (horizon + days * market.period.steps_per_day
                                            + history_steps(config, train_hours))
            frame = load_frame(session=s, market=market, since=since)
        n_fits = len(plan_walk_forward(frame.index, days=days, step=step, retrain_every=retrain_every,
                                       horizon=horizon, interval=market.interval).fit_origins)
        try:
            with progress(f"backtest {market}", n_fits) as bar:
                result = walk_forward(frame, days=days, step=step, retrain_every=retrain_every,
                                      train_steps=train_hours, horizon=horizon, config=config,
                                      device=device, stop=stop,
                                      progress=lambda done, total: bar.advance(1, f"fit {done}/{total}"))
        except NotEnoughHistory as exc:
            raise JobError(f"{market}: {exc}") from exc
        settings = {"days": days, "step": step, "retrain_every": retrain_every, "train_hours": train_hours,
                    "horizon": horizon}
        with sessions() as s, s.begin():
            run_id = record_backtest_run(
                session=s, market=market, started_at=started,
                finished_at=datetime.now(timezone.utc), settings=settings, config={**config.to_dict(), "horizon": horizon},
                code_version=code_version(), device=str(device), summary=result.summary, table=result.table,
                origins=pd.DatetimeIndex(result.predictions["origin_time"].unique()))
            n = write_predictions(result.predictions, session=s, market=market,
                                  kind=ForecastKind.BACKTEST, model_run_id=None, backtest_run_id=run_id)
        record.rows = n
        sm = result.summary
        record.message = (f"backtest run {run_id}: {sm.n_origins} origins, {sm.n_fits} fits, "
                          f"rMAE {sm.figures['rmae']:.4f}, coverage {sm.figures['coverage']:.3f}, "
                          f"fit time {sm.fit_seconds:.0f}s")
        return BacktestOutcome(market, result.table, sm, run_id)
