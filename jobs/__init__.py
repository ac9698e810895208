"""What the service does, on the data layer, the exchanges and the forecaster: the use cases, and
the composition root that wires them.

- the wiring: `settings.py` (with `settings_checks.py`), `bootstrap.py` for the typed `Services`
  every job takes, `logs.py`, `progress.py`, `times.py`; `cli.py` only re-exports the command
  line's entry point, which lives in `cli/`;
- the jobs themselves, one module each, the same functions for the CLI and the daemon: `ingest.py`
  (with `gaps.py`), `import_csv.py`, `train.py`, `predict.py`, `predict_at.py`, `backtest.py`,
  `retention.py`; each records its run (`recording.py`);
- the daemon's runtime: `runtime/` (scheduler, cycles, locks, pools, health server).

What the service shows (status, forecast view, chart, the daemon's pages) lives in `reports/`.
"""
