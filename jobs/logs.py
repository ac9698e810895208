"""Logging configured once, at the edge (CLI or daemon)."""
from __future__ import annotations

import logging
import sys
import time


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime  # UTC, like every timestamp the service stores
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter stays at WARNING unless we debug; urllib3's retry warnings (one per retry)
    # at ERROR, since the job's own line already says "after N tries".
    for noisy, quiet in (("apscheduler", logging.WARNING), ("urllib3", logging.ERROR), ("alembic", logging.WARNING),
                         ("matplotlib", logging.WARNING), ("PIL", logging.WARNING)):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "DEBUG" else quiet)
