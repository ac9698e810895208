"""The daemon's runtime (`forecaster run`): the scheduler and its cycles, the per job and market
locks, the worker pools, the health and metrics server, and the state they share. The jobs it runs
live one level up, in `jobs/`, and are the same functions the command line calls."""
