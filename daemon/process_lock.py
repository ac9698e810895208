"""One daemon per SQLite file: an exclusive `flock` on `<file>.daemon.lock`, which the kernel drops
when the process dies, even by kill -9. Postgres needs none: its row locks admit several daemons
(daemon/pg_locks.py)."""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

from jobs.errors import JobError


class DaemonRefused(JobError):
    """Another daemon already serves this SQLite database."""


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases or in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


class ProcessLock:
    """Held for the daemon's lifetime on SQLite; a no-op on Postgres. The file stays after exit
    (removing it would race with a daemon starting); only the lock on it matters."""

    def __init__(self, url: str) -> None:
        self.database = sqlite_file(url)
        self.path = self.database.with_name(self.database.name + ".daemon.lock") if self.database else None
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        import fcntl
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DaemonRefused(f"another `forecaster run` (pid {holder}) already serves the SQLite database "
                                f"{self.database}: one daemon per SQLite file "
                                f"(lock {self.path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> ProcessLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
