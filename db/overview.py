"""Read-only queries behind the daemon's pages (reports/web): the same SELECTs on the same views a BI
role runs (docs/sql.md), each filtered by the whole market key so that an index answers it.

Nothing here writes. `read_only(session)` makes a Postgres transaction read-only with a statement
timeout, so a page can neither change anything nor hold the database for long.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from core.market import Market
from db.market_key import market_columns
from db.types import UTCDateTime

PAGE_STATEMENT_TIMEOUT_MS = 5000
_TS = UTCDateTime()


def read_only(session: Session) -> None:
    """Postgres: this transaction reads only and no statement runs past the timeout. (SQLite has
    no per-transaction switch; the page's queries are SELECTs only.)"""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET TRANSACTION READ ONLY"))
        session.execute(text(f"SET LOCAL statement_timeout = {PAGE_STATEMENT_TIMEOUT_MS}"))


@lru_cache(maxsize=None)  # a handful of statements, each compiled and cached by SQLAlchemy once
def _q(sql: str, *, times_in: tuple[str, ...] = (), times_out: tuple[str, ...] = ()):
    """A SELECT whose time parameters and columns are UTCDateTime: stored and compared in the
    column's own format on SQLite, aware UTC datetimes back on both databases."""
    stmt = text(sql)
    if times_in:
        stmt = stmt.bindparams(*(bindparam(name, type_=_TS) for name in times_in))
    return stmt.columns(**{name: _TS for name in times_out}) if times_out else stmt


_KEY = "exchange = :exchange AND symbol = :symbol AND interval = :interval"  # bound by market_columns


def newest_candle(session: Session, market: Market) -> tuple[datetime, float] | None:
    """The newest stored candle's open time and close."""
    row = session.execute(_q(f"SELECT open_time, close FROM candles WHERE {_KEY} "
                               "ORDER BY open_time DESC LIMIT 1", times_out=("open_time",)), market_columns(market)).first()
    return None if row is None else (row.open_time, row.close)


@dataclass(frozen=True)
class ForecastStep:
    origin_time: datetime
    target_time: datetime
    horizon: int
    origin_close: float | None
    yhat: float
    lower: float
    upper: float
    model_run_id: int | None


def latest_forecast(session: Session, market: Market) -> list[ForecastStep]:
    """The newest live forecast, every horizon (view `latest_forecast`)."""
    rows = session.execute(_q(
        "SELECT origin_time, target_time, horizon, origin_close, yhat, yhat_lower, yhat_upper, model_run_id "
        f"FROM latest_forecast WHERE {_KEY} ORDER BY horizon", times_out=("origin_time", "target_time")), market_columns(market))
    return [ForecastStep(r.origin_time, r.target_time, r.horizon, r.origin_close,
                         r.yhat, r.yhat_lower, r.yhat_upper, r.model_run_id) for r in rows]


@dataclass(frozen=True)
class TargetSums:
    """The live forecasts of one target candle: how many, how many held its close, their summed
    interval score (forecast_accuracy's inside_interval and interval_score)."""
    target_time: datetime
    n: int
    hits: int
    score_sum: float


def live_sums_by_target(session: Session, market: Market, since: datetime,
                        until: datetime) -> list[TargetSums]:
    """TargetSums of the targets in (since, until] whose candle is stored. Written out on the tables
    rather than read from the view: its join to the origin's candle, unused here, tripled the time."""
    rows = session.execute(_q(
        "SELECT p.target_time AS target_time, COUNT(*) AS n, "
        "SUM(CASE WHEN a.close >= p.yhat_lower AND a.close <= p.yhat_upper THEN 1 ELSE 0 END) AS hits, "
        "SUM((p.yhat_upper - p.yhat_lower) + 10.0 * (CASE WHEN a.close < p.yhat_lower THEN p.yhat_lower - a.close "
        "ELSE 0 END + CASE WHEN a.close > p.yhat_upper THEN a.close - p.yhat_upper ELSE 0 END)) AS score "
        "FROM predictions p JOIN candles a ON a.exchange = p.exchange AND a.symbol = p.symbol "
        "AND a.interval = p.interval AND a.open_time = p.target_time "
        "WHERE p.exchange = :exchange AND p.symbol = :symbol AND p.interval = :interval AND p.kind = 'live' "
        "AND p.target_time > :since AND p.target_time <= :until GROUP BY p.target_time",
        times_in=("since", "until"), times_out=("target_time",)),
        {**market_columns(market), "since": since, "until": until})
    return [TargetSums(r.target_time, int(r.n), int(r.hits), float(r.score)) for r in rows]


@dataclass(frozen=True)
class PromotedModel:
    id: int
    finished_at: datetime | None
    band_source: str | None
    val_interval_score: float | None
    val_free_interval_score: float | None  # the best model-free band's, on the same validation slice
    val_coverage: float | None


def promoted_model(session: Session, market: Market) -> PromotedModel | None:
    row = session.execute(_q(
        "SELECT id, finished_at, band_source, val_interval_score, val_free_interval_score, val_coverage "
        f"FROM model_runs WHERE {_KEY} AND status = 'promoted' ORDER BY id DESC LIMIT 1",
        times_out=("finished_at",)),
        market_columns(market)).first()
    if row is None:
        return None
    return PromotedModel(row.id, row.finished_at, row.band_source, row.val_interval_score,
                         row.val_free_interval_score, row.val_coverage)


@dataclass(frozen=True)
class LastRun:
    job: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    message: str | None


def last_job_runs(session: Session, jobs: tuple[str, ...], market: Market) -> dict[str, LastRun | None]:
    """The newest run of each job for a market: one index probe each (ix_job_runs_market_job_started),
    in one statement (a round trip per job and market was a fifth of the overview's time)."""
    probe = ("SELECT * FROM (SELECT job, status, started_at, finished_at, message FROM job_runs "
             f"WHERE {_KEY} AND job = :job{{i}} ORDER BY started_at DESC, id DESC LIMIT 1) AS run{{i}}")
    sql = " UNION ALL ".join(probe.format(i=i) for i in range(len(jobs)))
    rows = session.execute(_q(sql, times_out=("started_at", "finished_at")),
                           {**market_columns(market), **{f"job{i}": job for i, job in enumerate(jobs)}})
    found: dict[str, LastRun | None] = dict.fromkeys(jobs)
    for r in rows:
        found[r.job] = LastRun(r.job, r.status, r.started_at, r.finished_at, r.message)
    return found


def closes_since(session: Session, market: Market,
                 since: datetime) -> list[tuple[datetime, float]]:
    rows = session.execute(_q(f"SELECT open_time, close FROM candles WHERE {_KEY} AND open_time >= :since "
                              "ORDER BY open_time", times_in=("since",), times_out=("open_time",)),
                           {**market_columns(market), "since": since})
    return [(r.open_time, r.close) for r in rows]


@dataclass(frozen=True)
class PastBand:
    target_time: datetime
    lower: float
    upper: float
    actual: float

    @property
    def hit(self) -> bool:
        return self.lower <= self.actual <= self.upper


def past_bands(session: Session, market: Market, horizon: int,
               since: datetime) -> list[PastBand]:
    """Live bands of one horizon whose target candle is known, targets since `since`."""
    rows = session.execute(_q(
        "SELECT target_time, yhat_lower, yhat_upper, actual FROM forecast_accuracy "
        f"WHERE {_KEY} AND kind = 'live' AND horizon = :h AND target_time >= :since ORDER BY target_time",
        times_in=("since",), times_out=("target_time",)), {**market_columns(market), "h": horizon, "since": since})
    return [PastBand(r.target_time, r.yhat_lower, r.yhat_upper, r.actual) for r in rows]
