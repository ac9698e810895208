"""`GET /`: one row per served market: newest candle and its lag in the market's own steps, the
promoted model and the band it serves, the newest forecast (origin close, median and band at the
first and last horizon), live coverage and interval score over the 7 days up to the newest candle,
the last run of each daemon job. A market with no candles, no model or a failed job says so."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from core.market import Market
from core.names import DAEMON_JOBS, Job, JobStatus
from db.overview import (ForecastStep, LastRun, PromotedModel, last_job_runs, latest_forecast, newest_candle,
                         promoted_model)
from reports.web.accuracy import Accuracy, LiveAccuracy
from reports.web.format import esc, percent, price, when, zone_for
from core.intervals import describe_steps


@dataclass(frozen=True)
class MarketRow:
    market: Market
    newest: tuple[datetime, float] | None
    lag_steps: int | None
    model: PromotedModel | None
    forecast: list[ForecastStep]
    accuracy: Accuracy | None
    runs: dict[str, LastRun | None]


def read_row(session, market: Market, now: datetime, live: LiveAccuracy) -> MarketRow:
    newest = newest_candle(session, market)
    lag = market.period.closed_after(newest[0], now) if newest else None
    accuracy = live.week(session, market, newest[0]) if newest else None
    return MarketRow(market, newest, lag, promoted_model(session, market), latest_forecast(session, market), accuracy,
                     last_job_runs(session, DAEMON_JOBS, market))


def market_href(market: Market, tz: str) -> str:
    return esc(f"/market/{quote(str(market), safe=':@')}?tz={tz}")


def render_overview(rows: list[MarketRow], tz: str) -> str:
    head = ("<tr><th>market</th><th>newest candle</th><th>lag</th><th>model and band</th>"
            "<th>newest forecast</th><th>last 7 days</th><th>jobs</th></tr>")
    body = "".join(_row(r, tz) for r in rows)
    return f'<table class="overview"><thead>{head}</thead><tbody>{body}</tbody></table>'


def _row(r: MarketRow, tz: str) -> str:
    zone = zone_for(r.market.exchange, tz)
    state = "fault" if r.newest is None or any(run and run.status == JobStatus.FAILED for run in r.runs.values()) else "ok"
    cells = [f'<a href="{market_href(r.market, tz)}">{esc(r.market)}</a>',
             _candle_cell(r, zone), _lag_cell(r), _model_cell(r), _forecast_cell(r, zone), _accuracy_cell(r),
             _jobs_cell(r, zone)]
    return f'<tr class="market {state}" data-market="{esc(r.market)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _candle_cell(r: MarketRow, zone) -> str:
    if r.newest is None:
        ingest = r.runs.get(Job.INGEST)
        if ingest is None:
            return '<span class="problem">no candles stored: never ingested (no ingest has run yet)</span>'
        return (f'<span class="problem">no candles stored: never ingested; the last ingest '
                f'{esc(ingest.status)} at {when(ingest.started_at, zone)}</span>')
    return f"{when(r.newest[0], zone)}<br>close {price(r.newest[1], r.market.quote)}"


def _lag_cell(r: MarketRow) -> str:
    if r.lag_steps is None:
        return "-"
    text = "up to date" if r.lag_steps == 0 else f"{esc(describe_steps(r.lag_steps, r.market.interval))} behind"
    return f'<span class="lag" data-lag="{r.lag_steps}">{text}</span>'


def _model_cell(r: MarketRow) -> str:
    if r.model is None:
        return '<span class="problem">no promoted model yet (none has passed the gate)</span>'
    return f"run {r.model.id}<br><small>{esc(r.model.band_source or 'band not recorded')}</small>"


def _forecast_cell(r: MarketRow, zone) -> str:
    if not r.forecast:
        return "none yet"
    first, last = r.forecast[0], r.forecast[-1]
    like, quote_ = first.origin_close or first.yhat, r.market.quote
    lines = [f"from {when(first.origin_time, zone)}, close {price(first.origin_close, quote_)}"]
    for step in dict.fromkeys((first, last)):
        lines.append(f"+{step.horizon}: {price(step.yhat, quote_, like=like)} "
                     f"[{price(step.lower, like=like)} - {price(step.upper, like=like)}]")
    return "<br>".join(lines)


def _accuracy_cell(r: MarketRow) -> str:
    a = r.accuracy
    live = ("no live forecast scored yet" if a is None or a.n == 0 else
            f"coverage {percent(a.coverage)} (80% wanted), interval score "
            f"{price(a.interval_score, r.market.quote, like=r.newest[1])} over {a.n} forecasts")
    m = r.model
    if m is None or m.val_interval_score is None or m.val_free_interval_score is None:
        return live
    like = r.newest[1] if r.newest else m.val_interval_score
    return (f"{live}<br><small>at validation: interval score {price(m.val_interval_score, like=like)}, best "
            f"model-free band {price(m.val_free_interval_score, like=like)}</small>")


def _jobs_cell(r: MarketRow, zone) -> str:
    lines = []
    for job, run in r.runs.items():
        if run is None:
            lines.append(f"{esc(job)}: never run")
            continue
        text = f'{esc(job)}: <span class="status {esc(run.status)}">{esc(run.status)}</span> {when(run.started_at, zone)}'
        if run.status == JobStatus.FAILED and run.message:
            text += f'<br><span class="problem">{esc(run.message[:200])}</span>'
        lines.append(text)
    return "<br>".join(lines)
