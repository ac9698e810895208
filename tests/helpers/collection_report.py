"""A pytest plugin (`-p tests.helpers.collection_report`) that writes what each collected test uses,
for the tests selected and for those `-m` or `-k` left out: its id, its fixtures (all of them, also
those reached through other fixtures), its parameters and its markers, as JSON to the file named by
TESTS_COLLECTION_REPORT. tests/test_markers.py reads it to check that the markers select what they
say."""
from __future__ import annotations

import json
import os
from pathlib import Path

REPORT_VARIABLE = "TESTS_COLLECTION_REPORT"
_deselected: list = []


def _described(item) -> dict:
    callspec = getattr(item, "callspec", None)
    return {"id": item.nodeid, "fixtures": sorted(getattr(item, "fixturenames", ())),
            "params": {k: str(v) for k, v in (callspec.params.items() if callspec else ())},
            "markers": sorted({m.name for m in item.iter_markers()})}


def pytest_deselected(items) -> None:
    _deselected.extend(items)


def pytest_collection_finish(session) -> None:
    path = os.environ.get(REPORT_VARIABLE)
    if path:
        Path(path).write_text(json.dumps({"selected": [_described(i) for i in session.items],
                                          "deselected": [_described(i) for i in _deselected]}))
