"""Progress for long work: a bar on a terminal, a log line every few seconds otherwise."""
from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager

log = logging.getLogger(__name__)


class _LogProgress:
    def __init__(self, what: str, total: float | None, every_seconds: float = 5.0):
        self.what, self.total, self.every = what, total, every_seconds
        self.done = 0.0
        self._last = time.monotonic()

    def advance(self, amount: float = 1, note: str = "") -> None:
        self.done += amount
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            of = f"/{self.total:g}" if self.total else ""
            log.info("%s: %g%s %s", self.what, self.done, of, note)


class _BarProgress:
    def __init__(self, bar, task):
        self._bar, self._task = bar, task

    def advance(self, amount: float = 1, note: str = "") -> None:
        self._bar.update(self._task, advance=amount, description=note or None)


@contextmanager
def progress(what: str, total: float | None = None):
    """Yields an object with `advance(amount, note)`."""
    if not sys.stderr.isatty():
        yield _LogProgress(what, total)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(f"{what} [progress.description]{{task.description}}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), transient=True) as bar:
        yield _BarProgress(bar, bar.add_task("", total=total))
