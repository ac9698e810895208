"""The jobs a daemon cycle runs, as the command line runs them (jobs/): ingest, train, predict for
one market, each given `before_write` (it raises when the cycle's lock is lost) and training a
`stop` it checks between epochs. A seam of our own: the decision tests hand in fakes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class UseCases:
    ingest: Callable  # (services, market, *, before_write) -> IngestResult
    train: Callable  # (services, market, *, stop, before_write) -> a training's outcome, None if none
    predict: Callable  # (services, market, *, before_write) -> a forecast's outcome


def _ingest(services, market, *, before_write):
    from jobs.ingest import ingest_market
    return ingest_market(services, market, backfill_days=services.settings.backfill_days, before_write=before_write)


def _train(services, market, *, stop, before_write):
    from jobs.train import model_config, train_market  # imports torch: only once a daemon trains
    settings = services.settings
    return train_market(services, market, train_hours=settings.train_steps_for(market.interval), stop=stop,
                        before_write=before_write, config=model_config(settings, market.interval))


def _predict(services, market, *, before_write):
    from jobs.predict import predict_market
    return predict_market(services, market, before_write=before_write)


JOBS = UseCases(_ingest, _train, _predict)
