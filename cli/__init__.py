"""The command line, `forecaster`: the Typer app (`app.py`), one module per group of commands, and
`main.py`, the entry point (`jobs/cli.py` re-exports it for the installed console script)."""
