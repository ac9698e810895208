"""Commands that read and show: `status`, `forecast`, `plot`; none of them writes to the database."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from cli.app import MARKET_HELP, MarketOpt, app, chosen_markets, command, open_services


class ChartKind(str, Enum):
    live = "live"
    backtest = "backtest"


@app.command()
@command
def status(settings, market: Optional[list[str]] = typer.Option(
               None, "--market", "-m", metavar="MARKET", help=f"{MARKET_HELP}; repeat for several (default: every market "
               "configured in FORECASTER_MARKETS or found in the database)"),
           as_json: bool = typer.Option(False, "--json", help="machine-readable output")):
    """Per market: last candle and its lag, promoted model and its metrics, last job and backtest runs."""
    from exchanges.base import parse_market
    from reports.status import collect_status, render_status
    services = open_services(settings)
    try:
        chosen = [parse_market(m) for m in market] if market else None
        report = collect_status(services, settings.market_list(), only=chosen)
    finally:
        services.close()
    from db.redact import mask_secrets
    typer.echo(mask_secrets(render_status(report, as_json=as_json)))  # job messages quote what failed


@app.command()
@command
def forecast(settings, market: Optional[list[str]] = MarketOpt,
             tz: str = typer.Option("UTC", "--tz", help="time zone of the times shown, e.g. Asia/Seoul")):
    """The newest live forecast of each market with its 80% band, in the quote currency."""
    from reports.forecast_view import latest_forecast_view
    from jobs.times import check_zone
    check_zone(tz)
    services = open_services(settings)
    try:
        views = [latest_forecast_view(services, m) for m in chosen_markets(settings, market)]
    finally:
        services.close()
    typer.echo("\n\n".join(v.render(tz) for v in views))


@app.command()
@command
def plot(settings, market: str = typer.Option(..., "--market", "-m", metavar="MARKET", help=MARKET_HELP),
         out: Path = typer.Option(..., "--out", "-o", help="PNG file to write"),
         days: int = typer.Option(14, min=1, help="days of candles and forecast origins shown, up to the "
                                  "newest candle"),
         kind: ChartKind = typer.Option(ChartKind.live, "--kind", help="which forecasts"),
         horizon: Optional[int] = typer.Option(None, "--horizon", min=1, help="steps ahead of the band drawn "
                                               "along the past, with its hits and misses (default: the longest)"),
         tz: str = typer.Option("UTC", "--tz", help="time zone of the time axis, e.g. Asia/Seoul")):
    """Actual closes, the newest forecast with its 80% band, and how past bands did."""
    from exchanges.base import parse_market
    from reports.plot import plot_market
    services = open_services(settings)
    try:
        chart = plot_market(services, parse_market(market), out, days=days, kind=kind.value, horizon=horizon,
                            tz=tz)
    finally:
        services.close()
    typer.echo(f"wrote {chart.path}")
