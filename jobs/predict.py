"""The predict job: the promoted model's forecast from the newest closed candle, as `live` rows."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from core.market import Market
from core.names import ForecastKind, Job
from db.candles import load_frame, newest_open_time
from db.model_runs import load_weights, promoted_run, retire_outdated
from db.predictions import write_predictions
from jobs.errors import JobError
from jobs.recording import recorded

if TYPE_CHECKING:
    from jobs.bootstrap import Services

# Loaded models by (database, model run id): a daemon forecasts every hour with the same promoted
# model of each market, and ids repeat across databases. Read and filled from several threads (the
# daemon's ingest pool); a model is used by one thread at a time, since one market is forecast by
# one worker at a time.
_MODEL_CACHE: dict[tuple[str, int], object] = {}
_CACHE_GUARD = threading.Lock()
MODEL_CACHE_SIZE = 1024  # promoted models of that many markets (a few hundred kB each)


@dataclass(frozen=True)
class PredictOutcome:
    market: Market
    model_run_id: int
    origin: datetime
    rows: int
    seconds: float

    def summary(self) -> str:
        return (f"{self.market}: {self.rows} live forecasts from origin {self.origin:%Y-%m-%dT%H:%M}Z "
                f"with model run {self.model_run_id} in {self.seconds:.2f}s")


def _forecaster(database_url: str, run_id: int, read_weights: Callable[[], bytes | None], market: Market):
    """The loaded model of a run, from the cache, or read from the database (only then)."""
    from forecaster.predict import Forecaster
    key = (database_url, run_id)
    with _CACHE_GUARD:
        cached = _MODEL_CACHE.get(key)
    if cached is not None:
        return cached
    weights = read_weights()
    if weights is None:
        raise JobError(f"{market}: promoted model run {run_id} has no stored weights")
    loaded = Forecaster.load(weights, device="cpu")
    with _CACHE_GUARD:
        while len(_MODEL_CACHE) >= MODEL_CACHE_SIZE:  # the oldest first: retired models fall out
            _MODEL_CACHE.pop(next(iter(_MODEL_CACHE)))
        return _MODEL_CACHE.setdefault(key, loaded)


def _retire(services: Services, run_id: int) -> None:
    with services.sessions() as s, s.begin():
        retire_outdated(session=s, run_id=run_id)


def predict_market(services: Services, market: Market, *, before_write: Callable[[], None] | None = None) -> PredictOutcome:
    """`before_write` is called before the forecast is written and raises to stop (the daemon's
    check that it still holds this job's lock)."""
    from forecaster.errors import NotEnoughHistory, OutdatedModel

    sessions = services.sessions
    started = time.perf_counter()
    with recorded(sessions, Job.PREDICT, market) as record:
        with sessions() as s:
            run = promoted_run(session=s, market=market)
            if run is None:
                raise JobError(f"{market}: no promoted model yet: run `forecaster train` first")
            origin = newest_open_time(session=s, market=market)
            if origin is None:
                raise JobError(f"{market}: no candles stored yet")
            try:
                forecaster = _forecaster(services.settings.database_url, run.id,
                                         lambda: load_weights(session=s, run_id=run.id), market)
            except OutdatedModel as exc:
                _retire(services, run.id)
                raise JobError(f"{market}: promoted model run {run.id} cannot forecast ({exc}); it is retired and "
                               "the daemon trains a new one (or run `forecaster train`)") from exc
            # The history the model reads, and a lookback of slack to bridge gaps near the origin.
            steps = forecaster.history_steps + forecaster.config.lookback
            frame = load_frame(session=s, market=market, since=origin - steps * market.period.step, until=origin)
        try:
            forecast = forecaster.forecast(frame, origin)
        except NotEnoughHistory as exc:
            raise JobError(f"{market}: {exc}") from exc
        forecast = forecast.assign(origin_time=origin)
        if before_write is not None:
            before_write()
        with sessions() as s, s.begin():
            n = write_predictions(forecast, session=s, market=market, kind=ForecastKind.LIVE, model_run_id=run.id)
        record.rows = n
        record.message = f"origin {origin:%Y-%m-%dT%H:%M}Z, model run {run.id}"
        return PredictOutcome(market, run.id, origin, n, time.perf_counter() - started)
