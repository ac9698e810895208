"""The worked queries of docs/sql.md, as the tests run them: each named block, per SQL dialect."""
from __future__ import annotations

import re

from tests.helpers.paths import REPO

DOC = REPO / "docs" / "sql.md"
QUERY_RE = re.compile(r"```sql\n-- query: (\w+)(?: \[(\w+)\])?\n(.*?)```", re.S)
DIALECTS = ("sqlite", "postgresql")


def documented_queries() -> dict[str, dict[str, str]]:
    """name -> {dialect: SQL}; a block without a [dialect] tag serves both."""
    queries: dict[str, dict[str, str]] = {}
    for name, only, sql in QUERY_RE.findall(DOC.read_text()):
        for dialect in ([only] if only else DIALECTS):
            assert dialect in DIALECTS, f"{name}: unknown dialect {dialect!r}"
            assert dialect not in queries.get(name, {}), f"{name} is documented twice for {dialect}"
            queries.setdefault(name, {})[dialect] = sql.strip()
    return queries
