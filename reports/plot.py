"""`forecaster plot`: a PNG of a market's closes, its newest forecast with the 80% band, and how the
band did in the past, readable with hundreds of origins.

- Every candle is drawn at its `open_time`, as in Grafana and in every table: the point at 10:00 is
  the candle of 10:00-11:00 (its close is the price at 11:00). A forecast for horizon h is drawn at
  its `target_time`, the open time of the candle it forecasts, so it sits above that candle's close.
- The newest origin's forecast: its median and band, from the close at the origin.
- The past, at one horizon (default the longest): each earlier forecast's band as a thin vertical
  bar at its target, and the truth marked as a hit (inside) or a miss (outside). One band per target
  candle instead of one fan per origin: 300 stacked fans are unreadable.
- The title's figures are forecaster.metrics.summary over every horizon of the origins shown, as
  `forecaster backtest` reports them, in the same words: for the same origins, the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from core.market import Market
from core.names import ForecastKind
from db.candles import load_frame, newest_open_time
from db.predictions import load_predictions
from jobs.errors import JobError
from jobs.figures import accuracy_line
from core.intervals import describe_steps

if TYPE_CHECKING:
    from jobs.bootstrap import Services

KINDS = tuple(ForecastKind)


@dataclass(frozen=True)
class Chart:
    path: Path
    title: str
    figures: dict  # forecaster.metrics.summary of the origins shown; empty when none is scored yet
    legend_over_plot_px: float = 0.0  # area of the legend drawn over the plotting area (0: none)


def plot_market(services: Services, market: Market, out: Path, *, days: int = 14, kind: str = ForecastKind.LIVE,
                horizon: int | None = None, tz: str = "UTC") -> Chart:
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    zone = _zone(tz)
    with services.sessions() as s:
        newest = newest_open_time(session=s, market=market)
        if newest is None:
            raise JobError(f"{market}: no candles stored yet")
        since = newest - timedelta(days=days)
        # from an hour before the first origin shown, so that its close (the naive forecast) is there
        candles = load_frame(session=s, market=market, since=since - timedelta(hours=1))
        preds = load_predictions(session=s, market=market, kind=kind, since=since)
    figures = scored_figures(preds, candles)
    title = chart_title(market, kind, days, preds, figures, zone, tz)
    path, overlap = _draw(market, out, candles, preds, title, horizon, zone, tz)
    return Chart(path, title, figures, overlap)


def scored_figures(preds: pd.DataFrame, candles: pd.DataFrame) -> dict:
    """The backtest's summary over the forecasts whose target and origin candles are known."""
    from forecaster.metrics import attach_actuals, summary  # numpy and pandas only: no torch
    if preds.empty:
        return {}
    frame = preds.assign(origin_time=pd.to_datetime(preds["origin_time"], utc=True),
                         target_time=pd.to_datetime(preds["target_time"], utc=True))
    scored = attach_actuals(frame, candles)
    scored = scored[scored["naive"].notna()]
    return summary(scored) if len(scored) else {}


def chart_title(market: Market, kind: str, days: int, preds: pd.DataFrame, figures: dict, zone=None,
                tz: str = "UTC") -> str:
    title = f"{market}: {kind} forecasts, last {days} days"
    if preds.empty:
        return title + " (no forecasts in this window)"
    origins = pd.to_datetime(preds["origin_time"], utc=True)
    if zone is not None:  # the title reads in the zone of the time axis
        origins = origins.dt.tz_convert(zone)
    title += (f", {origins.nunique()} origins {origins.min():%Y-%m-%d %H:%M}..{origins.max():%Y-%m-%d %H:%M} {tz}")
    if figures:
        title += f"\nall horizons, {figures['n']} scored: {accuracy_line(figures)}"
    return title


def _zone(tz: str):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--tz {tz!r} is not a time zone (e.g. UTC, Asia/Seoul, Europe/Berlin)") from None


def _draw(market: Market, out: Path, candles: pd.DataFrame, preds: pd.DataFrame, title: str,
          horizon: int | None, zone, tz: str) -> tuple[Path, float]:
    import matplotlib
    matplotlib.use("Agg")  # no display on a server
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 6), dpi=110)
    ax.plot(candles.index, candles["close"], color="black", lw=1.0, label="close (at the candle's open time)")
    if not preds.empty:
        preds = preds.assign(origin_time=pd.to_datetime(preds["origin_time"], utc=True),
                             target_time=pd.to_datetime(preds["target_time"], utc=True))
        _draw_past(ax, preds, candles, horizon or int(preds["horizon"].max()), market.interval)
        _draw_newest(ax, preds, candles, zone, tz)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(f"price ({market.quote})")
    ax.set_xlabel(f"candle open time ({tz})")
    locator = mdates.AutoDateLocator(tz=zone)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
    ax.grid(alpha=0.3)
    # Below the axes, never over the data (inside, it covered the price line in 3 of 5 charts).
    legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    renderer = fig.canvas.get_renderer()
    overlap = _overlap_px(legend.get_window_extent(renderer), ax.get_window_extent(renderer))
    plt.close(fig)
    return out, overlap


def _overlap_px(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def _draw_newest(ax, preds: pd.DataFrame, candles: pd.DataFrame, zone, tz: str) -> None:
    origin = preds["origin_time"].max()
    p = preds[preds["origin_time"] == origin].sort_values("horizon")
    start = candles["close"].get(origin)
    times, mid, lo, hi = p["target_time"], p["yhat"], p["yhat_lower"], p["yhat_upper"]
    if start is not None:  # the fan starts at the close it was made from
        times = pd.concat([pd.Series([origin]), times], ignore_index=True)
        mid, lo, hi = (pd.concat([pd.Series([start]), x], ignore_index=True) for x in (mid, lo, hi))
    ax.fill_between(times, lo, hi, color="tab:blue", alpha=0.3, lw=0,
                    label=f"80% band, newest origin {origin.tz_convert(zone):%Y-%m-%d %H:%M} {tz}")
    ax.plot(times, mid, color="tab:blue", lw=1.6, label="forecast median, newest origin")


def _draw_past(ax, preds: pd.DataFrame, candles: pd.DataFrame, horizon: int, interval: str = "1h") -> None:
    ahead = describe_steps(horizon, interval)
    # targets whose truth is known: the future belongs to the newest forecast alone
    p = preds[(preds["horizon"] == horizon) & (preds["target_time"] <= candles.index.max())]
    if p.empty:
        return
    ax.vlines(p["target_time"], p["yhat_lower"], p["yhat_upper"], color="tab:blue", alpha=0.25, lw=1.0,
              label=f"80% band {ahead} ahead, earlier origins")
    actual = candles["close"].reindex(pd.DatetimeIndex(p["target_time"]))
    known = actual.notna().to_numpy()
    inside = ((actual >= p["yhat_lower"].to_numpy()) & (actual <= p["yhat_upper"].to_numpy())).to_numpy()
    hits, misses = known & inside, known & ~inside
    if known.any():
        share = hits.sum() / known.sum()
        ax.scatter(p["target_time"][hits], actual[hits], s=6, color="tab:green", zorder=3,
                   label=f"inside the band {ahead} ahead: {hits.sum()} ({share:.0%})")
        ax.scatter(p["target_time"][misses], actual[misses], s=18, marker="x", color="tab:red", zorder=3,
                   label=f"outside: {misses.sum()}")
