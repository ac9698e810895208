"""The entry of `forecaster run`: the process settings a daemon needs before torch loads, the
composition root, the one-daemon-per-SQLite-file lock, then the daemon (daemon/daemon.py)."""
from __future__ import annotations

import gc
import os

from daemon.daemon import Daemon
from daemon.process_lock import ProcessLock
from daemon.training import resolve_train_workers, threads_per_training, use_torch_threads
from jobs.bootstrap import bootstrap


def run_daemon(settings) -> int:
    """Run until SIGTERM or Ctrl-C; returns the exit status. Raises JobError (DaemonRefused) when
    another daemon serves the same SQLite file, NotMigrated or a database error at start."""
    # Before torch loads: OpenMP worker threads otherwise spin for a while after every forecast,
    # which cost 4x the CPU of an ingest + predict cycle in bench/daemon_cycles.py; and as many
    # threads per training as leave every core one thread when the trainings run side by side.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    workers = resolve_train_workers(settings.train_workers, settings.device)
    use_torch_threads(threads_per_training(workers))
    services = bootstrap(settings)
    try:
        services.require_schema()
        with ProcessLock(settings.database_url):
            return Daemon(services, train_workers=workers).run()
    finally:
        services.close()
        # The process exits next: spare it the final garbage collection over torch's object graph,
        # which takes 1-2 s of the shutdown on a small machine and frees nothing the OS would not.
        gc.freeze()
