"""The daemon (`forecaster run`): its schedules and scheduler, the cycles it runs for each market and
the locks they run under, the worker pools, the health and metrics server, and the state they
share. It reaches the database only through the jobs (`jobs/`: the same functions the command line
calls) and `db/`, and gets its engines and settings from the composition root (jobs/bootstrap.py)."""
