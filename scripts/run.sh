#!/usr/bin/env bash
# One command that sets up and runs the service on the embedded default (SQLite, ./forecaster.db):
# ./scripts/run.sh   (settings: FORECASTER_* variables or a .env file, see README)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/forecaster db upgrade
exec .venv/bin/forecaster run
