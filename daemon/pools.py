"""A fixed number of worker threads for one kind of work, with at most one entry per key (a market)
queued or running at a time.

The daemon keeps two: ingest + forecast (small, so that an hour's forecasts never wait behind a
training) and training (FORECASTER_TRAIN_WORKERS). Threads are daemon threads: a job stuck in a
slow exchange call cannot hold up the exit after the shutdown grace period.

Work may name a group (the ingest pool: the market's exchange) and the pool a `group_limit`: at most
that many entries of one group run at once, and a worker takes the first queued entry whose group
has room. So markets of one slow exchange cannot take every worker and leave another exchange's
markets waiting (`group_limit_for`).
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
from typing import Callable

log = logging.getLogger("forecaster.daemon")


def group_limit_for(size: int, groups: int) -> int:
    """The most workers of `size` one of `groups` groups may hold so that, even with every other
    group's work stuck, each group still finds a worker (at least 1)."""
    return size if groups <= 1 else max(1, (size - 1) // (groups - 1))


class WorkPool:
    def __init__(self, name: str, size: int, group_limit: int | None = None) -> None:
        self.name, self.size = name, size
        self.group_limit = group_limit
        self._cond = threading.Condition()
        # (priority, seq, key, work, group)
        self._queue: list[tuple[tuple, int, str, Callable[[], None], str | None]] = []
        self._group_running: dict[str | None, int] = {}
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._seq = itertools.count()
        self._closed = False
        self.peak_running = 0
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(size)]
        for t in self._threads:
            t.start()

    def submit(self, key: str, work: Callable[[], None], priority: tuple = (), group: str | None = None) -> bool:
        """Queue `work` under `key`, lowest `priority` first (then first come); False if that key is
        queued or running already, or the pool is closed."""
        with self._cond:
            if self._closed or key in self._queued or key in self._running:
                return False
            heapq.heappush(self._queue, (priority, next(self._seq), key, work, group))
            self._queued.add(key)
            self._cond.notify()
            return True

    def counts(self) -> tuple[int, int]:
        """(running, queued)."""
        with self._cond:
            return len(self._running), len(self._queue)

    def close(self) -> None:
        """Take nothing new and drop what is queued; what runs finishes (or stops on its own)."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._queued.clear()
            self._cond.notify_all()

    def _next(self):
        """The first queued entry whose group has room, taken off the queue; None if none has."""
        for entry in sorted(self._queue) if self.group_limit is not None else self._queue[:1]:
            group = entry[4]
            if self.group_limit is None or group is None or self._group_running.get(group, 0) < self.group_limit:
                self._queue.remove(entry)
                heapq.heapify(self._queue)
                return entry
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (entry := self._next()) is None:
                    self._cond.wait()
                if self._closed:
                    return
                _, _, key, work, group = entry
                self._group_running[group] = self._group_running.get(group, 0) + 1
                self._queued.discard(key)
                self._running.add(key)
                self.peak_running = max(self.peak_running, len(self._running))
            try:
                work()
            except Exception as exc:  # work logs its own faults; this is a bug, and the worker lives on
                log.error("%s %s failed unexpectedly: %s: %s", self.name, key, type(exc).__name__, exc)
                log.debug("traceback of %s %s", self.name, key, exc_info=True)
            finally:
                with self._cond:
                    self._running.discard(key)
                    self._group_running[group] -= 1
                    self._cond.notify_all()  # an entry of this group may have room now
