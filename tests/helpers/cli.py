"""Run the real `forecaster` command as a user would, in a subprocess."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

FORECASTER = shutil.which("forecaster", path=str(Path(sys.executable).parent)) or "forecaster"


def run_cli(*args: str, env: dict | None = None, timeout: float = 300, cwd=None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTER_")}
    full_env.update(env or {})
    return subprocess.run([FORECASTER, *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
