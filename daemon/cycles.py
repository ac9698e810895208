"""What the daemon's scheduled jobs do for one market: ingest then forecast, train then forecast.
Each step runs under the lock of its job and market, and records its faults (daemon/steps.py); a
cycle returns the steps that failed (logged and recorded already), and the next run retries."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from daemon.clock import SYSTEM_CLOCK
from daemon.locks import StopWhenLockLost
from daemon.retry_note import retry_note
from daemon.state import DaemonState, MarketState
from daemon.steps import FAILED, NOTHING, Steps
from daemon.use_cases import JOBS, UseCases
from core.market import Market
from jobs.recording import describe_error

log = logging.getLogger("forecaster.daemon")
PREDICT_LOCK_WAIT_SECONDS = 30.0  # a forecast another worker is writing is worth waiting for


def needs_forecast(st: MarketState) -> bool:
    return (st.model is not None and st.newest_candle is not None
            and (st.newest_origin is None or st.newest_origin < st.newest_candle))


class MarketCycles:
    def __init__(self, services, steps: Steps, state: DaemonState, wake_training: Callable[[Market], None], *,
                 jobs: UseCases = JOBS, clock=SYSTEM_CLOCK) -> None:
        """`wake_training(market)`: ask for a market's first training (it has no promoted model)."""
        self.services, self.settings = services, services.settings
        self.steps, self.state, self.jobs, self.clock = steps, state, jobs, clock
        self.stop = steps.stop
        self.wake_training = wake_training

    def ingest_cycle(self, market: Market, slot: datetime | None = None) -> list[str]:
        """Ingest, then forecast if the newest candle has no forecast yet; train if there is no model.
        `slot`: the ingest schedule's fire time this run belongs to; if another daemon ingested the
        market for it already, this run only asks for a training if the market has no model (so
        that another daemon takes over a first training whose daemon died). Returns the failed steps."""
        def ingest(lock):
            if lock.is_done(slot):
                return NOTHING
            outcome = self.jobs.ingest(self.services, market, before_write=lock.ensure)
            lock.mark_done(slot)
            return outcome

        with self.steps.tracked(f"ingest:{market}"):
            failed = []
            status, outcome = self.steps.run("ingest", market, ingest)
            if outcome is NOTHING:  # that daemon forecasts it too; a missing model is everyone's business
                log.debug("ingest %s: done for this hour by another daemon", market)
                self.refresh(market)
                st = self.state.snapshot()[market]
                if st.model is None and st.newest_candle is not None:
                    self.wake_training(market)
                return failed
            if status == FAILED:
                failed.append("ingest")
                log.warning("%s", retry_note(self.settings, market, self.clock.now()))
            self.refresh(market)
            st = self.state.snapshot()[market]
            if st.model is None and st.newest_candle is not None:
                self.wake_training(market)
            elif needs_forecast(st):
                status, _ = self._predict(market)
                if status == FAILED:
                    failed.append("predict")
            return self._failed(market, failed)

    def retrain_cycle(self, market: Market, only_if_no_model: bool = False, *, lock=None,
                      slot: datetime | None = None) -> list[str]:
        """Train; if the new model is promoted, forecast the newest origin with it. `lock`: the
        train lock, when the caller claimed it already; `slot`: the retrain schedule's fire time,
        marked done for this market once the training ends (whatever its outcome: a market is
        trained once per schedule, not retried in a loop). Returns the failed steps."""
        def train(lock):
            if only_if_no_model:  # another worker may have trained one while this run waited
                self.refresh(market)
                if self.state.snapshot()[market].model is not None:
                    return NOTHING
            if lock.is_done(slot):
                return NOTHING
            try:
                return self.jobs.train(self.services, market, stop=StopWhenLockLost(self.stop, lock),
                                       before_write=lock.ensure)
            finally:
                # Not when the lock is lost or the daemon stops: another worker may take it over.
                if slot is not None and not self.stop.is_set() and lock.lost() is None:
                    lock.mark_done(slot)

        with self.steps.tracked(f"train:{market}"):
            self.refresh(market)
            before = self.state.snapshot()[market].model
            status, outcome = self.steps.run("train", market, train, lock=lock)
            if status == FAILED:
                return self._failed(market, ["train"])
            self.refresh(market)
            after = self.state.snapshot()[market].model
            if outcome not in (None, NOTHING) and after and (before is None or after["id"] != before["id"]):
                status, _ = self._predict(market, force=True)
                if status == FAILED:
                    return self._failed(market, ["predict"])
            return []

    def _predict(self, market: Market, *, force: bool = False):
        def run(lock):
            if not force:  # another worker may have written it while this run waited for the lock
                self.refresh(market)
                if not needs_forecast(self.state.snapshot()[market]):
                    return NOTHING
            outcome = self.jobs.predict(self.services, market, before_write=lock.ensure)
            self.refresh(market)
            return outcome
        return self.steps.run("predict", market, run, wait=PREDICT_LOCK_WAIT_SECONDS)

    @staticmethod
    def _failed(market: Market, failed: list[str]) -> list[str]:
        if failed:  # each step logged its own line already
            log.debug("%s: %s failed", market, " and ".join(failed))
        return failed

    def refresh(self, market: Market) -> None:
        try:
            self.state.refresh(self.services.sessions, market)
        except Exception as exc:  # the database is down: /healthz reports the growing lag
            log.debug("could not read the state of %s: %s", market, describe_error(exc))
