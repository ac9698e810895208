"""The composition root: settings, engine, sessions, HTTP session and exchange clients, built once
at start and handed down. Nothing here runs at import time."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_lock_engine, make_session_factory, safe_url
from db.migrate import current_revision, head_revision
from exchanges.base import ExchangeClient
from jobs.settings import Settings, load_settings


class NotMigrated(RuntimeError):
    """The database schema is missing or older than this code."""


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    _http: requests.Session | None = field(default=None, repr=False)
    # One client per exchange, made on first use; a caller may hand in its own (the tests: fast retries).
    clients: dict[str, ExchangeClient] = field(default_factory=dict, repr=False)
    _lock_engine: Engine | None = field(default=None, repr=False)

    @property
    def http(self) -> requests.Session:
        if self._http is None:
            from exchanges.http import make_session
            self._http = make_session()
        return self._http

    def client(self, exchange: str) -> ExchangeClient:
        if exchange not in self.clients:
            from exchanges.registry import make_client
            self.clients[exchange] = make_client(exchange, self.settings.exchange_url(exchange), self.http,
                                                  timeout=self._timeout())
        return self.clients[exchange]

    def lock_engine(self) -> Engine:
        """The engine of the daemon's job locks on Postgres (db/engine.py make_lock_engine), made on
        first use: only a daemon on Postgres needs it."""
        if self._lock_engine is None:
            self._lock_engine = make_lock_engine(self.settings.database_url)
        return self._lock_engine

    def _timeout(self) -> tuple[float, float]:
        """(connect, read) seconds: FORECASTER_HTTP_TIMEOUT_SECONDS bounds both, connect at most 5."""
        read = self.settings.http_timeout_seconds
        return min(5.0, read), read

    def require_schema(self) -> None:
        missing = missing_sqlite_file(self.engine)
        if missing is not None:  # connecting would create an empty file: say so instead
            raise NotMigrated(f"no database at {missing}: run `forecaster db upgrade` to create it there, "
                              "or point FORECASTER_DATABASE_URL at the existing one")
        have, need = current_revision(self.engine), head_revision()
        if have != need:
            raise NotMigrated(f"database {safe_url(self.settings.database_url)} is at migration "
                              f"{have or 'none'}, this code needs {need}: run `forecaster db upgrade`")

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._lock_engine is not None:
            self._lock_engine.dispose()
        self.engine.dispose()


def missing_sqlite_file(engine: Engine) -> Path | None:
    """The absolute path of a SQLite database file that does not exist (None for anything else)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:") or url.query.get("uri"):
        return None
    path = Path(url.database).resolve()
    return None if path.exists() else path


def bootstrap(settings: Settings | None = None) -> Services:
    settings = settings or load_settings()
    engine = make_engine(settings.database_url)
    return Services(settings, engine, make_session_factory(engine))
