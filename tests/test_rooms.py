"""The rooms import only the rooms below them (README, "Layout"): a change that reaches up (the
database reading the forecaster, a use case reading the daemon) fails here, not in a review."""
from __future__ import annotations

import ast

import pytest

from tests.helpers.paths import REPO

# Each room and the rooms it may import besides itself.
BELOW = {
    "core": set(),
    "exchanges": {"core"},
    "forecaster": {"core"},
    "db": {"core"},
    "jobs": {"core", "db", "exchanges", "forecaster"},
    "reports": {"core", "db", "exchanges", "forecaster", "jobs"},
    "daemon": {"core", "db", "exchanges", "forecaster", "jobs", "reports"},
    "cli": {"core", "db", "exchanges", "forecaster", "jobs", "reports", "daemon"},
}
SHIMS = {"jobs/cli.py", "jobs/__main__.py"}  # the console script's entry points, kept where installs look


def imported_rooms(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module and not node.level]
    return {name.split(".")[0] for name in names} & set(BELOW)


@pytest.mark.parametrize("room", BELOW)
def test_a_room_imports_only_the_rooms_below_it(room):
    reaching_up = {str(p.relative_to(REPO)): sorted(imported_rooms(p) - BELOW[room] - {room})
                   for p in (REPO / room).rglob("*.py") if str(p.relative_to(REPO)) not in SHIMS}
    assert {k: v for k, v in reaching_up.items() if v} == {}
