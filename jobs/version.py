"""Which code ran: the package version, and the git commit when it runs from a checkout."""
from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

_SOURCE = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def code_version() -> str:
    """`0.1.0`, or `0.1.0+git.5736af3` (`.dirty` with uncommitted changes) in a git checkout; an
    installed package (a docker image) has no git and gives the version alone."""
    try:
        version = metadata.version("forecaster")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = _git("rev-parse", "--short", "HEAD")
    if not commit:
        return version
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{version}+git.{commit}{'.dirty' if dirty else ''}"


def _git(*args: str) -> str:
    if not (_SOURCE / ".git").exists():
        return ""
    try:
        done = subprocess.run(["git", "-C", str(_SOURCE), *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
