"""Rows of `daemon_leases` (Postgres only): renew a daemon's lease, and end the lock connections of
daemons whose lease expired. Times come from the database's clock, so daemons on hosts whose clocks
differ agree on what has expired."""
from __future__ import annotations

from sqlalchemy import Connection, text


def renew_lease(connection: Connection, *, owner: str, seconds: float) -> None:
    connection.execute(text(
        "INSERT INTO daemon_leases (owner, renewed_at, expires_at) "
        "VALUES (:owner, now(), now() + make_interval(secs => :s)) "
        "ON CONFLICT (owner) DO UPDATE SET renewed_at = excluded.renewed_at, expires_at = excluded.expires_at"),
        {"owner": owner, "s": seconds})


def end_lease(connection: Connection, *, owner: str) -> None:
    connection.execute(text("DELETE FROM daemon_leases WHERE owner = :owner"), {"owner": owner})


def break_expired_leases(connection: Connection, *, me: str) -> list[tuple[str, int]]:
    """End the backends of every daemon (not `me`) whose lease expired, and its lease: (owner,
    backends ended) for each. A lock connection's application_name begins with its owner and a space
    (cut at Postgres's 63 characters)."""
    expired = [r.owner for r in connection.execute(text(
        "SELECT owner FROM daemon_leases WHERE expires_at < now() AND owner <> :me FOR UPDATE SKIP LOCKED"),
        {"me": me})]
    broken = []
    for owner in expired:
        prefix = f"{owner} "[:63]
        ended = connection.execute(text(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            # Only this role's: a backend of another role (a BI user naming itself like a daemon)
            # cannot be ended, and must not stop the others from being ended.
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = current_user "
            "AND left(application_name, :n) = :prefix"), {"n": len(prefix), "prefix": prefix}).scalar()
        connection.execute(text("DELETE FROM daemon_leases WHERE owner = :owner"), {"owner": owner})
        broken.append((owner, int(ended or 0)))
    return broken
