"""Training in the daemon: at most FORECASTER_TRAIN_WORKERS trainings at a time, the stalest model
first, and the work of each retrain schedule shared by every daemon on the same Postgres.

- A market without a promoted model is trained as soon as a worker is free (`request`, after each
  of its ingests), before any retrain.
- When the retrain schedule fires (`schedule(slot)`, `slot` being its fire time), each worker
  claims the next market whose training for that slot is not done and that no worker of any daemon
  holds (`locks.claim`: SELECT ... FOR UPDATE SKIP LOCKED over the due rows of `job_locks`, in
  stalest-model-first order), trains it, and marks it done for the slot in the same transaction
  that releases the lock; then claims the next, until none is left. So each market is trained
  once per schedule, by whichever daemon got to it first, and daemons split the work. A daemon that
  dies mid-training leaves its market not done: a daemon still working on that slot claims it
  once the server has released the lock.
- A slot is not given up while markets are left in it: when the database cannot be reached (a
  restart, a blip), the workers wait (RETRY_FIRST_S, doubling up to RETRY_MAX_S) and claim again.
  A daemon that starts (after a crash, a deploy) resumes the schedule's latest slot for the markets
  it owes: a promoted model older than the slot, and not done for it (`resume`).
"""
from __future__ import annotations

import logging
import os
import threading
from datetime import datetime

from daemon.clock import SYSTEM_CLOCK
from core.market import Market
from jobs.recording import describe_error

log = logging.getLogger("forecaster.daemon")
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_training(workers: int) -> int:
    """Torch threads for each training, so that the trainings together use every core once."""
    return max(1, cpu_count() // workers)


def resolve_train_workers(setting, device_name: str) -> int:
    """FORECASTER_TRAIN_WORKERS: a number as given; "auto" is one training per GPU (the daemon
    trains on one device) and, on a CPU, one per core with one torch thread each, which gave the
    most fits per minute here (docs/scaling.md)."""
    if setting != "auto":
        return int(setting)
    if device_name.strip().lower() != "cpu":
        from forecaster.device import resolve_device
        if resolve_device(device_name).type != "cpu":
            return 1
    return cpu_count()


def use_torch_threads(threads: int) -> None:
    """Torch's intra-op threads for the whole process (each thread takes the value at its first
    operation), unless the operator chose OMP_NUM_THREADS."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    import torch
    torch.set_num_threads(threads)


class TrainingWorkers:
    def __init__(self, size: int, cycles, locks, state, markets: list[Market], stop: threading.Event,
                 clock=SYSTEM_CLOCK) -> None:
        self.size, self.cycles, self.locks, self.state = size, cycles, locks, state
        self.markets, self.stop, self.clock = markets, stop, clock
        self._cond = threading.Condition()
        self._first: list[Market] = []  # markets waiting for their first model, in order of request
        self._slot: datetime | None = None  # the retrain slot whose work is not all claimed yet
        self._slot_markets: set[Market] | None = None  # those of the slot's markets due (None: all)
        self._retry_s = RETRY_FIRST_S
        self._busy: set[Market] = set()
        self.peak_running = 0
        self._threads = [threading.Thread(target=self._work, name=f"train-{i}", daemon=True) for i in range(size)]

    def start(self) -> TrainingWorkers:
        for t in self._threads:
            t.start()
        return self

    # ---- what there is to do
    def request(self, market: Market) -> None:
        """`market` has no promoted model: train it when a worker is free (once, however often asked)."""
        with self._cond:
            if market not in self._first and market not in self._busy:
                self._first.append(market)
                self._cond.notify()

    def schedule(self, slot: datetime, markets: list[Market] | None = None) -> None:
        """The retrain schedule fired at `slot`: retrain every market (or those of `markets`) not
        done for it."""
        with self._cond:
            if self._slot is None or slot > self._slot:
                self._slot, self._slot_markets = slot, None if markets is None else set(markets)
            elif slot == self._slot and self._slot_markets is not None:
                self._slot_markets = None if markets is None else self._slot_markets | set(markets)
            self._cond.notify_all()

    def resume(self, slot: datetime | None) -> list[Market]:
        """At start: retrain, for the schedule's latest `slot`, the markets whose promoted model is
        older than it and that are not done for it (the daemon was down or crashed then). Markets
        without a model are not owed anything: they get their first training anyway."""
        if slot is None:
            return []
        done = self.locks.done_for("train", self.markets)
        owed = []
        for m, st in self.state.snapshot().items():
            finished = (st.model or {}).get("finished_at")
            if finished is not None and finished < slot and (done.get(m) is None or done[m] < slot):
                owed.append(m)
        if owed:
            log.info("resuming the retrain of %s for %d market(s) not trained for it: %s",
                     f"{slot:%Y-%m-%dT%H:%M:%S}Z", len(owed), ", ".join(map(str, owed)))
            self.schedule(slot, owed)
        return owed

    def counts(self) -> tuple[int, int]:
        """(trainings running, markets waiting for a first model)."""
        with self._cond:
            return len(self._busy), len(self._first)

    def close(self) -> None:
        with self._cond:
            self._first.clear()
            self._slot = None
            self._cond.notify_all()

    # ---- the workers
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self.stop.is_set() and not self._first and self._slot is None:
                    self._cond.wait()
                if self.stop.is_set():
                    return
                if self._first:
                    market, slot = self._first.pop(0), None
                    self._begin(market)
                else:
                    market, slot = None, self._slot
            if market is not None:
                try:
                    self.cycles.retrain_cycle(market, only_if_no_model=True)
                finally:
                    self._end(market)
            elif not self._retrain_next(slot):
                with self._cond:
                    if self._slot == slot:  # nothing left to claim for it (a newer slot may have come)
                        self._slot = None

    def _retrain_next(self, slot: datetime) -> bool:
        """Claim and retrain one market due for `slot`; False when none is left."""
        with self._cond:
            due = self._slot_markets if self._slot == slot else None
        markets = [m for m in self._stalest_first() if due is None or m in due]
        try:
            with self.locks.claim("train", markets, slot) as held:
                if held is None:
                    return False
                self._retry_s = RETRY_FIRST_S
                self._begin(held.market)
                try:
                    self.cycles.retrain_cycle(held.market, lock=held, slot=slot)
                finally:
                    self._end(held.market)
                return True
        except Exception as exc:  # the database is unreachable: wait, then claim what is left again
            with self._cond:
                wait, self._retry_s = self._retry_s, min(RETRY_MAX_S, self._retry_s * 2)
            log.warning("retrain of the %s schedule paused: %s; claiming the markets left again in %.0fs",
                        f"{slot:%Y-%m-%dT%H:%M:%S}Z", describe_error(exc), wait)
            return not self.clock.wait(self.stop, wait)

    def _stalest_first(self) -> list[Market]:
        """Markets without a promoted model first, then the oldest promoted model first."""
        models = {m: st.model for m, st in self.state.snapshot().items()}

        def age(m: Market) -> tuple[int, str]:
            finished = (models.get(m) or {}).get("finished_at")
            return (0, "") if finished is None else (1, finished.isoformat())
        return sorted(self.markets, key=age)

    def _begin(self, market: Market) -> None:
        with self._cond:
            self._busy.add(market)
            self.peak_running = max(self.peak_running, len(self._busy))

    def _end(self, market: Market) -> None:
        with self._cond:
            self._busy.discard(market)
