"""`GET /market/<key>`: one market's closes of the last days, its newest forecast with the 80% band,
and how past bands of one horizon did (hits and misses), with the overview's figures above."""
from __future__ import annotations

from datetime import datetime, timedelta

from core.intervals import get_interval
from core.market import Market
from core.names import Job
from db.overview import closes_since, past_bands
from core.market import Market
from reports.web.accuracy import LiveAccuracy
from reports.web.chart import ChartData, render_chart
from reports.web.format import esc, percent, zone_for
from reports.web.overview import MarketRow, read_row, render_overview
from core.intervals import describe_steps

# How far back the chart reaches: the first of these calendar spans that holds a week of hours' worth
# of candles (168 to about 200 of each interval, readable at 960 px): 2 days of 15m candles, a week
# of 1h, 30 days of 4h, 180 days of 1d.
CHART_SPANS_DAYS = (1, 2, 7, 30, 90, 180, 365)
CHART_MIN_CANDLES = 168


def chart_window(interval: str) -> timedelta:
    """How far back the chart of a market of `interval` reaches (CHART_SPANS_DAYS)."""
    per_day = get_interval(interval).steps_per_day
    days = next((d for d in CHART_SPANS_DAYS if d * per_day >= CHART_MIN_CANDLES), CHART_SPANS_DAYS[-1])
    return timedelta(days=days)


def read_market(session, market: Market, now: datetime, horizon: int | None,
                live: LiveAccuracy) -> tuple[MarketRow, ChartData | None, int]:
    """The overview's row, the chart's data (None without candles) and the horizon of the past bands
    (default: the first, whose truth is known soonest)."""
    row = read_row(session, market, now, live)
    horizons = [f.horizon for f in row.forecast]
    h = horizon if horizon is not None else (horizons[0] if horizons else 1)
    if row.newest is None:
        return row, None, h
    since = row.newest[0] - chart_window(market.interval)
    closes = closes_since(session, market, since)
    past = past_bands(session, market, h, since)
    return row, ChartData(closes, row.forecast, past, market.quote, zone_for(market.exchange, "utc")), h


def render_market(row: MarketRow, chart: ChartData | None, horizon: int, tz: str) -> str:
    market = row.market
    zone = zone_for(market.exchange, tz)
    parts = [render_overview([row], tz)]
    if chart is None:
        ingest = row.runs.get(Job.INGEST)
        why = (f"the last ingest {esc(ingest.status)}: {esc(ingest.message or 'no message')}" if ingest
               else "no ingest has run yet")
        parts.append(f'<p class="problem error">{esc(market)} has never ingested: no candles stored ({why}).</p>')
        return "".join(parts)
    chart = ChartData(chart.closes, chart.forecast, chart.past, chart.quote, zone)
    hits = sum(b.hit for b in chart.past)
    parts.append(render_chart(chart))
    share = percent(hits / len(chart.past)) if chart.past else "-"
    parts.append(
        '<p class="legend"><span class="key closes"></span>close (at each candle\'s open time) '
        '<span class="key band"></span>newest forecast: median and 80% band '
        f'<span class="key hit"></span>hit <span class="key miss"></span>miss: past bands '
        f"{esc(describe_steps(horizon, market.interval))} ahead, {hits} of {len(chart.past)} held the close ({share})</p>")
    return "".join(parts)
