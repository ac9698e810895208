"""The docker compose file of the deploy stack, as the tests read it."""
from __future__ import annotations

import yaml

from tests.helpers.paths import REPO

COMPOSE = REPO / "docker-compose.yml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())
