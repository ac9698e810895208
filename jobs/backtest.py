"""The backtest job: the contract's walk-forward evaluation on stored candles, written as
`kind = 'backtest'` rows and reported per horizon next to the naive forecast."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from db.candles import load_frame, newest_open_time
from db.predictions import write_predictions
from exchanges.base import Market
from jobs.errors import JobError
from jobs.progress import progress
from jobs.recording import recorded


@dataclass
class BacktestOutcome:
    market: Market
    table: pd.DataFrame
    summary: dict

    def report(self) -> str:
        s = self.summary
        lines = [f"walk-forward backtest of {self.market}: {s['n_origins']} origins, {s['n_fits']} fits, "
                 f"fit time {s['fit_seconds']:.1f}s",
                 _format_table(self.table),
                 f"all horizons: MAE {s['mae']:.6g} vs naive {s['naive_mae']:.6g} (rMAE {s['rmae']:.4f}), "
                 f"80% band coverage {s['coverage']:.3f}, interval score {s['interval_score']:.6g}"
                 + (f" vs empirical band {s['empirical_interval_score']:.6g}" if "empirical_interval_score" in s
                    else "")]
        return "\n".join(lines)


def _format_table(table: pd.DataFrame) -> str:
    header = f"{'h':>3} {'n':>4} {'MAE':>12} {'naive MAE':>12} {'rMAE':>7} {'cover':>6} {'IS':>12} {'IS emp':>12}"
    rows = [header]
    for r in table.itertuples(index=False):
        rows.append(f"{r.horizon:>3} {r.n:>4} {r.mae:>12.6g} {r.naive_mae:>12.6g} {r.rmae:>7.4f} "
                    f"{r.coverage:>6.3f} {r.interval_score:>12.6g} {getattr(r, 'empirical_interval_score', float('nan')):>12.6g}")
    return "\n".join(rows)


def backtest_market(services, market: Market, *, days: int, step: int, retrain_every: int, train_hours: int,
                    horizon: int, config=None, stop=None) -> BacktestOutcome:
    from forecaster.backtest import plan_walk_forward, walk_forward
    from forecaster.device import resolve_device
    from forecaster.errors import NotEnoughHistory
    from jobs.train import model_config

    sessions = services.sessions
    config = config or model_config(services.settings)
    with recorded(sessions, "backtest", market) as record:
        with sessions() as s:
            newest = newest_open_time(session=s, exchange=market.exchange, symbol=market.symbol)
            if newest is None:
                raise JobError(f"{market}: no candles stored yet")
            # Only what the first fit and the last target need: (first origin - train window, L].
            since = newest - timedelta(hours=horizon + days * 24 + train_hours + config.lookback)
            frame = load_frame(session=s, exchange=market.exchange, symbol=market.symbol, since=since)
        n_fits = len(plan_walk_forward(frame.index, days=days, step=step, retrain_every=retrain_every,
                                       horizon=horizon).fit_origins)
        try:
            with progress(f"backtest {market}", n_fits) as bar:
                result = walk_forward(frame, days=days, step=step, retrain_every=retrain_every,
                                      train_hours=train_hours, horizon=horizon, config=config,
                                      device=resolve_device(services.settings.device), stop=stop,
                                      progress=lambda done, total: bar.advance(1, f"fit {done}/{total}"))
        except NotEnoughHistory as exc:
            raise JobError(f"{market}: {exc}") from exc
        with sessions() as s, s.begin():
            n = write_predictions(result.predictions, session=s, exchange=market.exchange, symbol=market.symbol,
                                  kind="backtest", model_run_id=None)
        record.rows = n
        sm = result.summary
        record.message = (f"{sm['n_origins']} origins, {sm['n_fits']} fits, rMAE {sm['rmae']:.4f}, "
                          f"coverage {sm['coverage']:.3f}, fit time {sm['fit_seconds']:.0f}s")
        return BacktestOutcome(market, result.table, sm)
