"""The ingest job: new closed candles of one market from its exchange into `candles`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from db.candles import candles_to_frame, count_candles, describe_gaps, gaps_between, newest_open_time, write_candles
from exchanges.base import HOUR, ExchangeClient, Market, last_closed_open_time
from jobs.recording import recorded

# Each pass asks again for the last few stored hours: an exchange may still amend the candle it
# has just closed, and the upsert rewrites a row only if its values changed.
OVERLAP = timedelta(hours=2)


@dataclass(frozen=True)
class IngestResult:
    market: Market
    new_rows: int
    newest: datetime | None
    gaps: int


def ingest_market(sessions, client: ExchangeClient, market: Market, *, backfill_days: int,
                  now: datetime | None = None) -> IngestResult:
    now = now or datetime.now(timezone.utc)
    with recorded(sessions, "ingest", market) as record:
        with sessions() as s:
            stored_newest = newest_open_time(session=s, exchange=market.exchange, symbol=market.symbol)
        if stored_newest is None:
            since = last_closed_open_time(now) - timedelta(days=backfill_days)
        else:
            since = stored_newest - OVERLAP
        candles = client.fetch(market, since, now)  # raises ExchangeError: nothing is written
        with sessions() as s, s.begin():
            before = count_candles(session=s, exchange=market.exchange, symbol=market.symbol)
            write_candles(candles_to_frame(candles), session=s, exchange=market.exchange, symbol=market.symbol,
                          source="api")
            after = count_candles(session=s, exchange=market.exchange, symbol=market.symbol)
            newest = newest_open_time(session=s, exchange=market.exchange, symbol=market.symbol)
            check_from = (stored_newest - HOUR) if stored_newest else None
            gaps = gaps_between(session=s, exchange=market.exchange, symbol=market.symbol, since=check_from)
        record.rows = after - before
        lag = (last_closed_open_time(now) - newest) / HOUR if newest else None
        record.message = (f"{after - before} new candles, fetched {len(candles)}, newest "
                          f"{newest:%Y-%m-%dT%H:%M}Z" if newest else "no candles yet")
        if lag:
            record.message += f", {lag:.0f}h behind the last closed hour"
        if gaps:
            record.message += f"; {describe_gaps(gaps)}"
        return IngestResult(market, after - before, newest, sum(g[2] for g in gaps))
