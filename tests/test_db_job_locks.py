"""The daemons' claims of due work match a market by its whole key, interval included: an hourly
and a day market of the same symbol are two rows, claimed in the order asked, each by one worker."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core.market import Market
from db.job_locks import claim_due_row, ensure_lock_rows, mark_done, read_done_for

HOURLY, DAILY, OTHER = Market("bithumb", "ETH", "KRW"), Market("bithumb", "ETH", "KRW", "1d"), Market("upbit", "BTC", "KRW")
SLOT = datetime(2024, 3, 1, 12, tzinfo=timezone.utc)


@pytest.mark.postgres
def test_due_rows_are_claimed_in_order_by_the_whole_key_and_skipped_while_held(pg_url):
    from db.engine import make_engine
    from db.migrate import upgrade
    engine = make_engine(pg_url)
    upgrade(engine)
    try:
        with engine.begin() as conn:
            ensure_lock_rows(conn, [("train", m) for m in (HOURLY, DAILY, OTHER)])
            ensure_lock_rows(conn, [("train", HOURLY)])  # again: nothing changes
        with engine.connect() as first, engine.connect() as second:
            assert claim_due_row(first, job="train", markets=[DAILY, HOURLY], slot=SLOT) == DAILY
            # the other worker skips the row held, and a market it did not ask for
            assert claim_due_row(second, job="train", markets=[DAILY, HOURLY], slot=SLOT) == HOURLY
            mark_done(first, job="train", market=DAILY, slot=SLOT, by="first")
            first.commit()
            second.rollback()
            assert claim_due_row(second, job="train", markets=[DAILY, HOURLY], slot=SLOT) == HOURLY
            assert claim_due_row(first, job="train", markets=[DAILY], slot=SLOT) is None  # done for this slot
            assert claim_due_row(first, job="predict", markets=[DAILY], slot=SLOT) is None  # no such row
            assert claim_due_row(first, job="train", markets=[], slot=SLOT) is None
            second.rollback()
            first.rollback()
        with engine.connect() as conn:
            done = read_done_for(conn, job="train")
        assert done[DAILY] == SLOT and done[HOURLY] is None and set(done) == {HOURLY, DAILY, OTHER}
    finally:
        engine.dispose()
