"""`forecaster run`: the long-running daemon."""
from __future__ import annotations

import typer

from cli.app import app, command


@app.command()
@command(daemon=True)
def run(settings):
    """The long-running daemon: ingest, retrain and predict on schedules, catching up at start."""
    from daemon.run import run_daemon
    raise typer.Exit(run_daemon(settings))
