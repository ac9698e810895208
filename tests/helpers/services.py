"""The services object the jobs take, built on a test database."""
from __future__ import annotations


def services_for(migrated, *clients):
    """The services object the jobs take, on a `migrated` database; `clients`: exchange clients to use
    instead of the ones settings would make (the tests' have fast retries)."""
    from jobs.bootstrap import Services
    from jobs.settings import load_settings
    url, engine, sessions = migrated
    return Services(load_settings(database_url=url, device="cpu"), engine, sessions,
                    clients={c.name: c for c in clients})
