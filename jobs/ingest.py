"""The ingest job: new closed candles of one market from its exchange into `candles`, then a repair
of the gaps in what is stored (jobs/gaps.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Callable

from core.intervals import steps_word
from core.market import Market
from core.names import Job
from db.candles import candles_to_frame, count_candles, newest_open_time, write_candles
from exchanges.base import ExchangeError
from jobs.gaps import repair_gaps
from jobs.recording import recorded

if TYPE_CHECKING:
    from jobs.bootstrap import Services

# Each pass asks again for the last two stored candles: an exchange may still amend the candle it
# has just closed, and the upsert rewrites a row only if its values changed.
OVERLAP_STEPS = 2


@dataclass(frozen=True)
class IngestResult:
    market: Market
    new_rows: int
    newest: datetime | None
    gaps: int  # missing candles the exchange was asked for this run and does not have


def ingest_market(services: Services, market: Market, *, backfill_days: int,
                  now: datetime | None = None, before_write: Callable[[], None] | None = None) -> IngestResult:
    """`before_write` is called before each write; it raises to stop the job (the daemon's check
    that it still holds this job's lock)."""
    sessions, client = services.sessions, services.client(market.exchange)
    now = now or datetime.now(timezone.utc)
    check = before_write or (lambda: None)
    step = market.period
    with recorded(sessions, Job.INGEST, market) as record:
        with sessions() as s:
            stored_newest = newest_open_time(session=s, market=market)
        # The store must reach the candles that closed in the last `backfill_days` days, the oldest
        # one included (or the exchange confirm it has none that old: jobs/gaps.py, the head).
        reach = now - timedelta(days=backfill_days) - step.step
        if stored_newest is None:
            since = reach
        else:
            since = stored_newest - OVERLAP_STEPS * step.step
        # `known`: the exchange served the newest stored hour, so its history cannot end after it.
        candles = client.fetch(market, since, now, known=stored_newest)  # raises ExchangeError: nothing written
        due = step.closed_after(since, now)
        if not candles and due > 0:
            raise ExchangeError(f"{client.name}: no candles at all for {market} after {since:%Y-%m-%dT%H}Z, where "
                                f"{due} closed {steps_word(step)} were due" + (f" (it served up to {stored_newest:%Y-%m-%dT%H}Z "
                                                                  "before): an empty answer" if stored_newest else
                                                                  ": is the market listed?"))
        check()
        with sessions() as s, s.begin():
            before = count_candles(session=s, market=market)
            write_candles(candles_to_frame(candles), session=s, market=market, source="api")
            after = count_candles(session=s, market=market)
        check()
        gaps = repair_gaps(sessions, client, market, now=now, fetched_since=since, before_write=check, reach=reach)
        with sessions() as s:
            newest = newest_open_time(session=s, market=market)
        record.rows = after - before + gaps.filled_hours
        lag = step.closed_after(newest, now) if newest else None
        record.message = (f"{after - before} new candles, fetched {len(candles)}, newest "
                          f"{newest:%Y-%m-%dT%H:%M}Z" if newest else "no candles yet")
        if lag:
            record.message += (f", {lag:.0f}h behind the last closed hour" if step.name == "1h"
                               else f", {lag:.0f} candles behind the last closed one")
        if gaps.describe():
            record.message += f"; {gaps.describe()}"
        if gaps.head_pending is not None:
            head = gaps.head_pending
            raise ExchangeError(
                f"{client.name}: the history of {market} stops at {head.last + step.step:%Y-%m-%dT%H:%M}Z, "
                f"{head.hours} candles after the requested start {head.first:%Y-%m-%dT%H:%M}Z "
                f"(FORECASTER_BACKFILL_DAYS={backfill_days}): a cut-short answer or the market's first candles; "
                f"asked again next run ({record.message})")
        return IngestResult(market, after - before + gaps.filled_hours, newest, sum(g.hours for g in gaps.lacking))
