"""The console script's entry point (`[project.scripts] forecaster = "jobs.cli:main"`): the command line lives in `cli/`."""
from cli.main import app, main  # noqa: F401
