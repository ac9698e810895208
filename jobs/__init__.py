"""What the service does, on the data layer, the exchanges and the forecaster.

- the command line: `cli.py` (with `settings.py`, `bootstrap.py` for the typed `Services` every
  job takes, `logs.py`, `progress.py`, `times.py`, `figures.py`);
- the jobs themselves, one module each, the same functions for the CLI and the daemon: `ingest.py`
  (with `gaps.py`), `import_csv.py`, `train.py`, `predict.py`, `predict_at.py`, `backtest.py`,
  `status.py`, `plot.py`, `retention.py`; each records its run (`recording.py`);
- the daemon's runtime: `runtime/` (scheduler, cycles, locks, pools, health server).
"""
