"""The market page's chart as inline SVG, drawn on the server: closes, the newest forecast with its
80% band, and past bands of one horizon marked as hits or misses, as `forecaster plot` draws them:
each candle at its open time, each forecast at its target time, past bands as thin bars with the
truth as a dot (a hit inside its band, a miss outside)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from db.overview import ForecastStep, PastBand
from reports.web.format import esc, price, short_when

WIDTH, HEIGHT = 960, 400
LEFT, RIGHT, TOP, BOTTOM = 96, 16, 16, 40


@dataclass(frozen=True)
class ChartData:
    closes: list[tuple[datetime, float]]
    forecast: list[ForecastStep]  # the newest origin's, every horizon
    past: list[PastBand]
    quote: str
    zone: tzinfo


def render_chart(data: ChartData) -> str:
    if not data.closes:
        return ""
    times = [t for t, _ in data.closes] + [f.target_time for f in data.forecast] + [b.target_time for b in data.past]
    values = ([c for _, c in data.closes] + [v for f in data.forecast for v in (f.lower, f.upper)]
              + [v for b in data.past for v in (b.lower, b.upper, b.actual)])
    t0, t1 = min(times).timestamp(), max(times).timestamp()
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05 or abs(hi) * 0.01 or 1.0
    lo, hi = lo - pad, hi + pad
    span_t = (t1 - t0) or 1.0

    def x(ts: datetime) -> float:
        return round(LEFT + (ts.timestamp() - t0) / span_t * (WIDTH - LEFT - RIGHT), 1)

    def y(v: float) -> float:
        return round(TOP + (hi - v) / (hi - lo) * (HEIGHT - TOP - BOTTOM), 1)

    like = data.closes[-1][1]
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">',
             f"<title>closes, newest forecast with its 80% band, past bands</title>"]
    for v in _ticks(lo, hi):
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v)}" y2="{y(v)}"/>'
                     f'<text class="axis" x="{LEFT - 6}" y="{y(v) + 4}" text-anchor="end">'
                     f"{price(v, like=like)}</text>")
    for ts, label in _time_ticks(min(times), max(times), data.zone):
        parts.append(f'<line class="grid" x1="{x(ts)}" x2="{x(ts)}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>'
                     f'<text class="axis" x="{x(ts)}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{label}</text>')
    for b in data.past:
        kind = "hit" if b.hit else "miss"
        label = esc(f"target {short_when(b.target_time, data.zone)}: {kind}")
        parts.append(f'<line class="past-band {kind}" x1="{x(b.target_time)}" x2="{x(b.target_time)}" '
                     f'y1="{y(b.lower)}" y2="{y(b.upper)}"/>'
                     f'<circle class="actual {kind}" cx="{x(b.target_time)}" cy="{y(b.actual)}" r="2.5">'
                     f"<title>{label}</title></circle>")
    parts.append('<polyline class="closes" points="' + " ".join(f"{x(t)},{y(c)}" for t, c in data.closes) + '"/>')
    if data.forecast:
        first = data.forecast[0]
        start = (first.origin_time, first.origin_close if first.origin_close is not None else data.closes[-1][1])
        upper = [(f.target_time, f.upper) for f in data.forecast]
        lower = [(f.target_time, f.lower) for f in reversed(data.forecast)]
        band = [start, *upper, *lower]
        parts.append('<polygon class="band" points="' + " ".join(f"{x(t)},{y(v)}" for t, v in band) + '">'
                     "<title>80% band of the newest forecast</title></polygon>")
        median = [start, *((f.target_time, f.yhat) for f in data.forecast)]
        parts.append('<polyline class="median" points="' + " ".join(f"{x(t)},{y(v)}" for t, v in median) + '"/>')
        parts.append(f'<line class="origin" x1="{x(start[0])}" x2="{x(start[0])}" y1="{TOP}" '
                     f'y2="{HEIGHT - BOTTOM}"/>')
    parts.append("</svg>")
    return "".join(parts)


_TICK_STEPS = [timedelta(hours=h) for h in (1, 3, 6, 12, 24, 48, 96, 168, 336, 720)]


def _time_ticks(first: datetime, last: datetime, zone: tzinfo, most: int = 8) -> list[tuple[datetime, str]]:
    """Round times of the chosen zone between first and last: midnights for a week, every 6 hours
    for two days, and so on; labelled with the day, and the hour when ticks fall within a day."""
    step = next((s for s in _TICK_STEPS if (last - first) / s <= most), _TICK_STEPS[-1])
    local = first.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)  # a local midnight
    ticks = []
    ts = start
    while ts <= last:
        if ts >= first:
            fmt = "%m-%d" if step >= timedelta(days=1) else "%m-%d %H:%M"
            ticks.append((ts, esc(ts.astimezone(zone).strftime(fmt))))
        ts += step
    return ticks


def _ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round prices between lo and hi, about `count` of them."""
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]
