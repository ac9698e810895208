#!/usr/bin/env bash
# One command that sets up and runs the tests: ./scripts/test.sh [pytest args]
# Postgres tests use FORECASTER_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres)
# and skip with a reason when it is not reachable (in CI, with CI=true, they fail instead).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "[test]"
exec .venv/bin/python -m pytest "$@"
