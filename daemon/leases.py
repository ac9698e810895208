"""Leases on the daemon's job locks (Postgres; issue 21): a claim expires unless renewed.

A job lock is a row lock held by a transaction on a connection of its own (daemon/pg_locks.py),
and it lives as long as that connection. A frozen daemon (SIGSTOP, a paused VM) keeps its
connections, since the kernel still answers their keepalives, and so would keep its markets for as
long as it is frozen. So every daemon renews a lease in `daemon_leases` every third of
FORECASTER_LOCK_LEASE_SECONDS, and at each renewal ends the lock connections of the daemons whose
lease has expired (their application_name begins with the daemon's owner name): the server
releases their rows and the other daemons claim them. A frozen daemon that wakes up finds its lock
connections gone, and its jobs stop without writing as for any lost lock (HeldLock.ensure), and its
keeper takes a fresh lease.
"""
from __future__ import annotations

import logging
import threading

from db.daemon_leases import break_expired_leases, end_lease, renew_lease
from jobs.recording import describe_error

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, engine, owner: str, seconds: float) -> None:
        self.engine, self.owner, self.seconds = engine, owner, seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Take the lease now (before any lock is held), then keep it from a thread."""
        self.renew()
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self._thread.start()

    def renew(self) -> None:
        with self.engine.begin() as conn:
            renew_lease(conn, owner=self.owner, seconds=self.seconds)
        with self.engine.begin() as conn:
            for owner, ended in break_expired_leases(conn, me=self.owner):
                log.warning("the lease of %s expired (frozen or gone for over %gs): ended its %d lock "
                            "connection(s), so its claims pass on", owner, self.seconds, ended)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except Exception as exc:  # the database is away: the lock connections went with it
                log.warning("could not renew the lease of %s: %s", self.owner, describe_error(exc))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            with self.engine.begin() as conn:
                end_lease(conn, owner=self.owner)
        except Exception as exc:  # it expires by itself
            log.debug("could not end the lease of %s: %s", self.owner, describe_error(exc))
