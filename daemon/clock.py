"""The daemon's one source of time, handed to the parts that decide by it (which schedule slot a run
belongs to, what is due, how long a job ran, how long to back off), so that tests can run those
decisions on a clock they move by hand instead of waiting for the real one."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone


class SystemClock:
    def now(self) -> datetime:
        """Aware UTC wall time: schedule slots and candle arithmetic."""
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        """Seconds for durations and deadlines, immune to wall-clock jumps."""
        return time.monotonic()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Sleep up to `seconds`, or until `event` is set; whether it is set."""
        return event.wait(seconds)


SYSTEM_CLOCK = SystemClock()
