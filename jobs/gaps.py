"""Gap repair: hours missing inside a market's stored candles are asked for again until the exchange
has confirmed, twice, that it does not have them.

A hole can come from an exchange that answered short once (a page lost under load), from an older
version of this code that took a short history for the whole one, or from a real gap in the
exchange's data (maintenance). The first two are refilled by asking again; the last must not be
asked for at every ingest forever. So each ingest:
- counts the stored candles of the market (one index scan); if every missing hour of the stored
  span belongs to a confirmed gap, it is done;
- otherwise lists the gaps and, newest first, asks the exchange for the hours of each one that is
  not confirmed yet (MAX_ASKED_PER_RUN per run; gaps inside the span this run's own fetch covered
  count as asked);
- stores what comes back, and records in `candle_gaps` what the exchange still lacks. A gap is
  confirmed once it was lacking on CONFIRM_CHECKS asks, the last one CONFIRM_AFTER or more after its
  hours closed (an exchange may publish a recent hour late); then it is never asked for again.
The job run's message says what was filled and what the exchange lacks.

The span before the first stored candle is a gap too (the head), when the store must reach further
back (`reach`: the back-fill's requested start). A back-fill whose answer stopped short, a half page
then an empty one, looks exactly like a market whose data begins there; so the head is asked for
again on the next runs until the exchange fills it or has lacked it CONFIRM_CHECKS times (no waiting
CONFIRM_AFTER: a market's first candle is not published late), or at once where the exchange says
where its data begins (a client with `reports_first_candle`: Binance pages forward from the start
time and answers from the listing on). `GapReport.head_pending` is a head not settled yet: the
ingest that calls this records `failed`, so a truncated back-fill is never an `ok` run. A head row
in `candle_gaps` is the one whose `last_missing` is the candle before the oldest stored one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.intervals import describe_steps_short, steps_word, time_format
from core.market import Market
from db.candle_gaps import forget_gaps, record_gap, recorded_gaps, stored_open_times, stored_span
from db.candles import candles_to_frame, describe_gaps, find_gaps, write_candles
from exchanges.base import ExchangeClient, ExchangeError
from exchanges.registry import grid_of
from jobs.recording import one_line

CONFIRM_CHECKS = 2
CONFIRM_AFTER = timedelta(hours=24)
MAX_ASKED_PER_RUN = 5


@dataclass(frozen=True)
class Gap:
    first: datetime  # the first missing open_time
    last: datetime  # the last missing open_time
    step: timedelta  # the market's candle interval

    @property
    def hours(self) -> int:
        """Missing candles (hours for 1h markets; the `candle_gaps.hours` column counts these)."""
        return int((self.last - self.first) / self.step) + 1

    @property
    def before(self) -> datetime:  # the stored candle before the gap
        return self.first - self.step

    def as_tuple(self) -> tuple[datetime, datetime, int]:  # the shape db.candles.describe_gaps takes
        return self.before, self.last + self.step, self.hours


@dataclass
class GapReport:
    interval: str = "1h"
    filled_hours: int = 0
    filled_gaps: int = 0
    lacking: list[Gap] = field(default_factory=list)  # asked this run, not on the exchange
    confirmed: int = 0  # of `lacking`, confirmed by this run
    waiting: int = 0  # gaps left for the next runs
    error: str | None = None
    head_pending: Gap | None = None  # the span before the first stored candle, not fetched nor confirmed

    def describe(self) -> str:
        parts = []
        if self.filled_hours:
            parts.append(f"filled {self.filled_hours} missing {steps_word(self.interval)} in {self.filled_gaps} gaps")
        if self.lacking:
            parts.append("the exchange lacks " + describe_gaps([g.as_tuple() for g in self.lacking],
                                                               interval=self.interval))
            if self.confirmed:
                parts.append(f"{self.confirmed} of them confirmed now, not asked for again")
        if self.waiting:
            parts.append(f"{self.waiting} more gaps to ask for in the next runs")
        if self.error:
            parts.append(f"gap repair stopped: {self.error}")
        return "; ".join(parts)


def repair_gaps(sessions, client: ExchangeClient, market: Market, *, now: datetime,
                fetched_since: datetime | None, before_write=None, reach: datetime | None = None) -> GapReport:
    """Ask again for the unconfirmed gaps of `market`. `fetched_since`: the ingest that calls this
    has just asked the exchange for every hour after it, so gaps after it count as asked. `reach`:
    the store must hold the candles opening after it, or the exchange confirm it lacks them (the
    head, see the module docstring). `before_write` is called before each write and raises to stop
    (see jobs.ingest)."""
    check = before_write or (lambda: None)
    step = market.period.step
    with sessions() as s:
        count, oldest, newest = stored_span(session=s, market=market)
        recorded = {g.first_missing: g for g in recorded_gaps(session=s, market=market)}
        if oldest is None:
            return GapReport()
        head, head_row, old_heads = _head(market, oldest, reach, recorded)
        inner = {first: r for first, r in recorded.items() if r.last_missing >= oldest}
        head_settled = head is None or _settles(head_row, head)
        missing = int((newest - oldest) / step) + 1 - count
        if head_settled and missing == sum(g.hours for g in inner.values() if g.confirmed_at is not None):
            if old_heads:
                with sessions() as s2, s2.begin():
                    forget_gaps(session=s2, market=market, first_missing=old_heads)
            return GapReport()  # every missing hour is in a confirmed gap
        stored = stored_open_times(session=s, market=market)
        gaps = [Gap(a + step, b - step, step) for a, b, _ in find_gaps(stored, step)]
    current = {(g.first, g.last) for g in gaps}
    # Rows whose gap was filled since (an import) or changed shape start over.
    stale = [first for first, r in inner.items() if (first, r.last_missing) not in current] + old_heads
    history = {first: r for first, r in inner.items() if first not in stale}
    report = GapReport(interval=market.interval)
    asked_by_ingest, to_ask = [], []
    for gap in sorted(gaps, key=lambda g: g.first, reverse=True):  # the newest hours matter most
        row = history.get(gap.first)
        if row is not None and row.confirmed_at is not None:
            continue
        if fetched_since is not None and gap.before >= fetched_since:
            asked_by_ingest.append(gap)
        else:
            to_ask.append(gap)
    head_asked = False
    if not head_settled:
        # The head decides whether this run is ok, so it is asked first.
        if fetched_since is not None and head.first > fetched_since:
            head_asked = True  # this run's own fetch went back to `reach` and stopped short
        else:
            to_ask.insert(0, head)
    report.waiting = max(0, len(to_ask) - MAX_ASKED_PER_RUN)
    check()
    with sessions() as s, s.begin():
        forget_gaps(session=s, market=market, first_missing=stale)
        for gap in asked_by_ingest:
            _record_lacking(s, market, gap, history.get(gap.first), now, report)
        if head_asked:
            _record_lacking(s, market, head, head_row, now, report, head=True, client=client)
    head_done = False
    for gap in to_ask[:MAX_ASKED_PER_RUN]:
        is_head = gap is head
        try:
            # The head has no stored candle before it to vouch that the exchange's data goes back further.
            fetched = client.fetch(market, gap.before, gap.last + 2 * step, known=None if is_head else gap.before)
        except ExchangeError as exc:
            missing = describe_steps_short(gap.hours, market.interval)
            report.error = f"asking for the {missing} after {gap.before.strftime(time_format(market.interval))}Z: {one_line(exc)}"
            break
        found = [c for c in fetched if gap.first <= c.open_time <= gap.last]
        check()
        with sessions() as s, s.begin():
            write_candles(candles_to_frame(found), session=s, market=market, source="api")
            forget_gaps(session=s, market=market,
                        first_missing=[gap.first] + ([head_row.first_missing] if is_head and head_row else []))
            for rest in _still_missing(gap, {c.open_time for c in found}):
                # Of a head, only the run at its start is still a head (one after a fetched candle
                # is a gap inside the data); a head that came back in part starts its count over.
                still_head = is_head and rest.first == gap.first
                row = (None if found else head_row) if still_head else None if is_head else history.get(gap.first)
                _record_lacking(s, market, rest, row, now, report, head=still_head, client=client)
        if found:
            report.filled_hours += len(found)
            report.filled_gaps += 1
        head_done = head_done or is_head
    if head in to_ask and not head_done:  # an error stopped the asking before it
        report.head_pending = head
    return report


def _head(market: Market, oldest: datetime, reach: datetime | None, recorded: dict) -> tuple:
    """(the head gap or None, its recorded row or None, first_missing of head rows that no longer
    fit: the oldest stored candle moved)."""
    step = market.period.step
    heads = [r for r in recorded.values() if r.last_missing < oldest]
    row = next((r for r in heads if r.last_missing == oldest - step), None)
    old = [r.first_missing for r in heads if r is not row]
    if reach is None:
        return None, None, old + ([row.first_missing] if row else [])
    first = grid_of(market).floor(reach) + step  # the oldest candle the store must reach
    if first >= oldest:
        return None, None, old + ([row.first_missing] if row else [])
    return Gap(first, oldest - step, step), row, old


def _settles(row, head: Gap) -> bool:
    """A confirmed head row that goes back at least as far as `head` (the reach moves on with time)."""
    return row is not None and row.confirmed_at is not None and row.first_missing <= head.first


def _still_missing(gap: Gap, found: set[datetime]) -> list[Gap]:
    runs, start = [], None
    t = gap.first
    while t <= gap.last:
        if t not in found and start is None:
            start = t
        elif t in found and start is not None:
            runs.append(Gap(start, t - gap.step, gap.step))
            start = None
        t += gap.step
    if start is not None:
        runs.append(Gap(start, gap.last, gap.step))
    return runs


def _record_lacking(session, market: Market, gap: Gap, row, now: datetime, report: GapReport, *,
                    head: bool = False, client=None) -> None:
    """The exchange was asked for `gap` now and did not have it."""
    checks = (row.checks if row is not None else 0) + 1
    if head:
        confirmed = checks >= CONFIRM_CHECKS or getattr(client, "reports_first_candle", False)
        if not confirmed:
            report.head_pending = gap
        if row is not None and row.first_missing != gap.first:  # the reach moved on: one head row
            forget_gaps(session=session, market=market, first_missing=[row.first_missing])
    else:
        confirmed = checks >= CONFIRM_CHECKS and now - (gap.last + gap.step) >= max(CONFIRM_AFTER, 2 * gap.step)
    record_gap(session=session, market=market, first_missing=gap.first,
               last_missing=gap.last, hours=gap.hours, checks=checks,
               first_checked_at=row.first_checked_at if row is not None else now, last_checked_at=now,
               confirmed_at=now if confirmed else None)
    report.lacking.append(gap)
    report.confirmed += confirmed
