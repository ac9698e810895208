"""Where the benchmarks find the full real series: the development data set beside the repository
(`../shared/data` on the development machines), or the folder FORECASTER_SHARED_DATA names.

A clone has no such folder, so a benchmark without its data says so in one line and exits 2; the
tests' 2023 slices (tests/data) stand in for the Binance file where a year is enough.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BINANCE = "binance_ETHUSDT_1h_dev.csv"
TEST_DATA_BINANCE = REPO / "tests" / "data" / "binance_ETHUSDT_1h_2023.csv.gz"


def shared_data() -> Path:
    return Path(os.environ.get("FORECASTER_SHARED_DATA") or REPO.parent / "shared" / "data")


def shared_csv(name: str = BINANCE) -> Path:
    return shared_data() / name


def require_csv(path: str | Path, option: str) -> Path:
    """`path` if it is a file; otherwise one line on stderr saying why and what to do instead, exit 2."""
    path = Path(path)
    if path.is_file():
        return path
    print(f"{Path(sys.argv[0]).name}: no data at {path}. The full series are the development data set "
          f"in ../shared/data beside the repository (FORECASTER_SHARED_DATA=DIR names another folder); "
          f"tests/data/README.md gives their public sources. For 2023 only, pass "
          f"{option}{_shortest(TEST_DATA_BINANCE)}", file=sys.stderr)
    sys.exit(2)


def _shortest(path: Path) -> str:
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative
