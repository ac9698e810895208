"""`forecaster predict --at`: live forecasts for past origins, as the daemon would have made them,
so that `forecast_accuracy` scores them at once.

Which model forecasts an origin: the newest model run, by the end of its training window, that
passed the gate (promoted now, promoted before, or trained on a past window without `--promote`),
still has its weights, and was trained on candles up to the origin at the latest. It never sees a
candle after the origin, so the forecast is what could have been made then. For an origin after
the daemon started this is the model it served then, or one trained on the same data a little
later; for an origin before any model was trained there is none: `forecaster train --until`
makes one.

An origin that already has a live forecast keeps it unless `replace` (the old one then goes to
`prediction_history`). Origins are the stored candles' open times in the range.
"""
from __future__ import annotations

import bisect
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from core.market import Market
from core.names import ForecastKind, Job
from db.candles import load_frame, open_times_between
from db.model_runs import load_weights, models_trained_until
from db.predictions import origins_with_forecasts, write_predictions
from jobs.errors import JobError
from jobs.progress import progress
from jobs.recording import recorded

if TYPE_CHECKING:
    from jobs.bootstrap import Services

CHUNK_ORIGINS = 500  # forecast this many origins at once: fast, and memory stays small


@dataclass
class PastForecastOutcome:
    market: Market
    start: datetime
    end: datetime
    origins: int = 0
    rows: int = 0
    kept: int = 0          # origins that had a forecast already
    no_model: int = 0      # origins before the first model's training window ended
    no_history: int = 0    # origins with too little history before them
    model_run_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        text = (f"{self.market}: {self.rows} live forecasts from {self.origins} origins "
                f"{self.start:%Y-%m-%dT%H:%M}Z..{self.end:%Y-%m-%dT%H:%M}Z with model runs "
                f"{', '.join(map(str, self.model_run_ids)) or 'none'} in {self.seconds:.1f}s")
        notes = [f"{self.kept} origins already had one (kept; --replace forecasts them again)" if self.kept else "",
                 f"{self.no_model} origins precede every model's training data (forecaster train --until)"
                 if self.no_model else "",
                 f"{self.no_history} origins lack history before them" if self.no_history else ""]
        notes = [n for n in notes if n]
        return text + ("; " + "; ".join(notes) if notes else "")


def predict_at(services: Services, market: Market, start: datetime, end: datetime, *, replace: bool = False) -> PastForecastOutcome:
    sessions = services.sessions
    started = time.perf_counter()
    outcome = PastForecastOutcome(market, start, end)
    with recorded(sessions, Job.PREDICT, market) as record:
        with sessions() as s:
            origins = open_times_between(session=s, market=market, since=start, until=end)
            existing = set() if replace else origins_with_forecasts(
                session=s, market=market, kind=ForecastKind.LIVE, since=start, until=end)
            models = models_trained_until(session=s, market=market, until=end)
        if not origins:
            raise JobError(f"{market}: no candle with open_time in {start:%Y-%m-%dT%H:%M}Z..{end:%Y-%m-%dT%H:%M}Z")
        todo = [o for o in origins if o not in existing]
        outcome.kept = len(origins) - len(todo)
        by_model = _assign(todo, models)
        outcome.no_model = len(todo) - sum(len(v) for v in by_model.values())
        if todo and not by_model:
            raise JobError(f"{market}: no model was trained on candles up to {todo[0]:%Y-%m-%dT%H:%M}Z or "
                           f"earlier: run `forecaster train --market {market} --until {todo[0]:%Y-%m-%dT%H:%M}Z`")
        forecasts = []
        with progress(f"forecasts of {market}", len(todo) - outcome.no_model) as bar:
            for run_id, run_origins in by_model.items():
                forecasts.append((run_id, _forecast_with(services, market, run_id, run_origins, outcome)))
                bar.advance(len(run_origins), f"model run {run_id}")
        with sessions() as s, s.begin():  # all or nothing
            for run_id, frame in forecasts:
                outcome.rows += write_predictions(frame, session=s, market=market, kind=ForecastKind.LIVE, model_run_id=run_id)
        outcome.origins = sum(frame["origin_time"].nunique() for _, frame in forecasts)
        outcome.model_run_ids = sorted(by_model)
        outcome.seconds = time.perf_counter() - started
        record.rows = outcome.rows
        record.message = (f"past origins {start:%Y-%m-%dT%H:%M}Z..{end:%Y-%m-%dT%H:%M}Z: {outcome.origins} "
                          f"forecast with model runs {', '.join(map(str, outcome.model_run_ids)) or 'none'}")
    return outcome


def _assign(origins: list[datetime], models: list[tuple[int, datetime]]) -> dict[int, list[datetime]]:
    """Each origin to the model with the newest training window ending at or before it."""
    ends = [train_end for _, train_end in models]
    by_model: dict[int, list[datetime]] = defaultdict(list)
    for origin in origins:
        i = bisect.bisect_right(ends, origin) - 1
        if i >= 0:
            by_model[models[i][0]].append(origin)
    return dict(by_model)


def _forecast_with(services: Services, market: Market, run_id: int, origins: list[datetime],
                   outcome: PastForecastOutcome) -> pd.DataFrame:
    from forecaster.errors import NotEnoughHistory, OutdatedModel
    from forecaster.predict import Forecaster

    with services.sessions() as s:
        weights = load_weights(session=s, run_id=run_id)
        try:
            forecaster = Forecaster.load(weights, device="cpu")
        except OutdatedModel as exc:
            raise JobError(f"{market}: model run {run_id} cannot forecast ({exc})") from exc
        steps = forecaster.history_steps + forecaster.config.lookback
        frame = load_frame(session=s, market=market, since=origins[0] - steps * market.period.step, until=origins[-1])
    parts = []
    for i in range(0, len(origins), CHUNK_ORIGINS):
        chunk = origins[i:i + CHUNK_ORIGINS]
        try:
            parts.append(forecaster.forecast_many(frame, chunk))
        except NotEnoughHistory:  # some origin lacks history: forecast the others one by one
            for origin in chunk:
                try:
                    parts.append(forecaster.forecast_many(frame, [origin]))
                except NotEnoughHistory:
                    outcome.no_history += 1
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["origin_time", "horizon", "target_time", "yhat", "yhat_lower", "yhat_upper"])
