"""Status changes of model runs and job runs are fenced by the status they expect: a run that
another worker marked abandoned (it found the run's lock free) stays failed, whatever its old
owner writes afterwards. On SQLite and Postgres."""
from __future__ import annotations

import sqlalchemy as sa

from core.market import Market
from db.job_runs import fail_stale_running, finish_job_run, start_job_run
from db.model_runs import fail_stale_training, promote, record_failed, record_trained, start_model_run
from core.records import TrainingMetrics

MARKET = Market("bithumb", "ETH", "KRW")


def test_a_run_marked_abandoned_cannot_be_trained_promoted_or_refailed(migrated):
    _, _, sessions = migrated
    with sessions() as s, s.begin():
        run_id = start_model_run(session=s, device="cpu", config={}, train_start=None, train_end=None, market=MARKET)
    with sessions() as s, s.begin():  # the worker that took the lock over
        assert fail_stale_training(session=s, market=MARKET) == 1
    with sessions() as s, s.begin():  # the old owner finishes its training
        assert record_trained(session=s, run_id=run_id, metrics=TrainingMetrics(val_mae=1.0), weights=b"w",
                              status="trained") is False
        assert promote(session=s, run_id=run_id, market=MARKET) is False
        assert record_failed(session=s, run_id=run_id, error="too late") is False
    with sessions() as s:
        row = s.execute(sa.text("SELECT status, error FROM model_runs")).one()
        assert row.status == "failed" and row.error.startswith("abandoned")
        assert s.scalar(sa.text("SELECT count(*) FROM model_weights")) == 0


def test_a_job_run_marked_abandoned_keeps_that_verdict(migrated):
    _, _, sessions = migrated
    with sessions() as s, s.begin():
        run_id = start_job_run(session=s, job="train", market=MARKET)
    with sessions() as s, s.begin():
        fail_stale_running(session=s, job="train", message="abandoned: its lock was free", market=MARKET)
    with sessions() as s, s.begin():
        assert finish_job_run(session=s, run_id=run_id, status="ok", rows=1, message="done") is False
    with sessions() as s:
        assert s.execute(sa.text("SELECT status, message FROM job_runs")).one() == ("failed", "abandoned: its lock was free")
