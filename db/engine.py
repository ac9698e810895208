"""One engine per process and the session factory handed to each unit of work."""
from __future__ import annotations

import os
import socket

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from db.redact import mask_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
# libpq keepalives of the daemon's lock connections: one whose network path died is noticed within
# about a minute (and a check of the lock cannot hang for the kernel's default of hours).
LOCK_CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 20, "keepalives_interval": 5, "keepalives_count": 3,
                          "tcp_user_timeout": 30_000}


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Engine with the settings each backend needs beside a long-running daemon."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # Named in pg_stat_activity like the daemon's lock connections, so an operator sees which
    # process on which host holds which connections.
    name = f"forecaster {socket.gethostname()} pid {os.getpid()}"[:63]
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_recycle=1800,
                         connect_args={"application_name": name})


def make_lock_engine(url: str) -> Engine:
    """The second engine of a daemon on Postgres, for its job locks (daemon/pg_locks.py): each lock
    is a transaction on a connection of its own, really closed when the job ends (NullPool: never
    parked in a pool, where it would outlive the lock it held)."""
    return create_engine(url, poolclass=NullPool, connect_args=LOCK_CLIENT_KEEPALIVES)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets `forecaster status` or a BI tool read while the daemon writes; the busy timeout
    # makes a writer wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def safe_url(url: str) -> str:
    """The URL with its password hidden, in the userinfo and in query parameters such as
    `?password=` (db/redact.py), for logs and error messages."""
    return mask_url(url)
