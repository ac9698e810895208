"""Logging configured once, at the edge (CLI or daemon)."""
from __future__ import annotations

import logging
import sys
import time

from db.redact import mask_secrets

JOB_LOGGER = "forecaster.jobs"  # jobs.recording: one line per job run


class _MaskedFormatter(logging.Formatter):
    """Every log line, traceback included, with its secrets masked (db/redact.py): a URL with a
    `?password=` may reach a log line from any library, not only from our own messages."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class _WithoutJobFailures(logging.Filter):
    """Drops the job-failure line: a command prints the failure itself, as its one `error:` line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == JOB_LOGGER and record.levelno >= logging.ERROR)


def configure_logging(level: str = "INFO", *, job_failures: bool = True) -> None:
    """Log lines on stderr, UTC. `job_failures=False` for one-shot commands, which report a failed
    job themselves; the daemon keeps them (its log is the record)."""
    handler = logging.StreamHandler(sys.stderr)
    if not job_failures:
        handler.addFilter(_WithoutJobFailures())
    formatter = _MaskedFormatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
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
