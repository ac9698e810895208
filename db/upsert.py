"""Dialect-aware batched upserts: the one place that knows SQLite from Postgres for writes."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

BATCH_ROWS = 5_000


def _insert_for(session: Session):
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database dialect {name!r} (SQLite and PostgreSQL are supported)")


def upsert(
    session: Session,
    table: Table,
    rows: Iterable[dict],
    *,
    key: Sequence[str],
    update: Sequence[str],
    batch_rows: int = BATCH_ROWS,
) -> None:
    """Insert rows; on a key conflict overwrite `update` columns (or keep the row if none). Never commits."""
    insert = _insert_for(session)
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= batch_rows:
            _write(session, insert, table, batch, key, update)
            batch = []
    if batch:
        _write(session, insert, table, batch, key, update)


def _write(session, insert, table, batch, key, update) -> None:
    stmt = insert(table)
    if not update:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    else:
        stmt = stmt.on_conflict_do_update(index_elements=list(key), set_={c: stmt.excluded[c] for c in update})
    session.execute(stmt, batch)

