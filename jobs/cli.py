"""`forecaster`: the command line. The only place that turns errors into exit codes."""
from __future__ import annotations

import functools
import inspect
import logging
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from jobs.settings import MAX_BACKFILL_DAYS, MAX_TRAIN_HOURS

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Hourly crypto candles, an LSTM forecaster judged against the naive forecast, "
                       "forecasts as SQL tables.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
log = logging.getLogger("forecaster.cli")

MarketOpt = typer.Option(None, "--market", "-m", help="exchange:BASE-QUOTE; repeat for several "
                         "(default: FORECASTER_MARKETS)")


def _expected_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import SQLAlchemyError

    from exchanges.base import ExchangeError, MarketError
    from jobs.bootstrap import NotMigrated
    from jobs.import_csv import CsvError
    from jobs.settings import SettingsError
    from jobs.errors import JobError
    return (SettingsError, ExchangeError, MarketError, NotMigrated, CsvError, JobError, SQLAlchemyError,
            ValueError, OSError)


def command(fn):
    """Run a command with settings and logging set up; one line and exit 1 on a known failure."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from jobs.logs import configure_logging
        from jobs.recording import describe_error
        from jobs.settings import SettingsError, load_settings
        try:
            settings = load_settings()
        except SettingsError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
        configure_logging(settings.log_level)
        try:
            return fn(settings, *args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130)
        except _expected_errors() as e:
            typer.echo(f"error: {describe_error(e)}", err=True)
            log.debug("details", exc_info=True)
            raise typer.Exit(1)
    # Typer reads the signature: show it the command's options without the injected settings.
    del wrapper.__wrapped__
    signature = inspect.signature(fn)
    wrapper.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
    return wrapper


def _markets(settings, market: Optional[list[str]]):
    from exchanges.base import parse_market
    return [parse_market(m) for m in market] if market else settings.market_list()


def _services(settings, *, migrated: bool = True):
    from jobs.bootstrap import bootstrap
    services = bootstrap(settings)
    if migrated:
        services.require_schema()
    return services


@db_app.command("upgrade")
@command
def db_upgrade(settings):
    """Apply all migrations (Alembic `upgrade head`); safe to run twice."""
    from db.engine import safe_url
    from db.migrate import current_revision, upgrade
    services = _services(settings, migrated=False)
    try:
        upgrade(services.engine)
        typer.echo(f"database {safe_url(settings.database_url)} is at migration {current_revision(services.engine)}")
    finally:
        services.close()


@app.command()
@command
def ingest(settings, market: Optional[list[str]] = MarketOpt,
           backfill_days: Optional[int] = typer.Option(None, "--backfill-days", min=0, max=MAX_BACKFILL_DAYS,
                                                       help="on an empty store, days to back-fill (default 180)")):
    """One ingestion pass now: new closed candles since the last stored one."""
    from jobs.ingest import ingest_market
    from jobs.recording import describe_error
    services = _services(settings)
    failed = []
    try:
        for m in _markets(settings, market):
            try:
                r = ingest_market(services.sessions, services.client(m.exchange), m,
                                  backfill_days=settings.backfill_days if backfill_days is None else backfill_days)
                typer.echo(f"{m}: {r.new_rows} new candles, newest {r.newest:%Y-%m-%dT%H:%M}Z" if r.newest
                           else f"{m}: no candles")
            except _expected_errors() as e:
                failed.append(f"{m}: {describe_error(e)}")
    finally:
        services.close()
    if failed:
        for line in failed:
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(1)


@app.command("import-csv")
@command
def import_csv_cmd(settings, path: Path = typer.Argument(..., help="CSV with header ts,open,high,low,close,volume"),
                   market: str = typer.Option(..., "--market", "-m", help="exchange:BASE-QUOTE")):
    """Load a CSV of hourly candles; idempotent; a bad row stops it with nothing written."""
    from exchanges.base import parse_market
    from jobs.import_csv import import_csv
    m = parse_market(market)
    services = _services(settings)
    try:
        r = import_csv(services.sessions, path, m)
    finally:
        services.close()
    typer.echo(f"{m}: {r.rows_read} rows read, {r.new_rows} new candles")


def _parse_until(until: Optional[str]) -> Optional[datetime]:
    if until is None:
        return None
    import pandas as pd
    try:
        ts = pd.Timestamp(until)
    except ValueError:
        raise ValueError(f"--until {until!r} is not an ISO-8601 time") from None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


@app.command()
@command
def train(settings, market: Optional[list[str]] = MarketOpt,
          train_hours: Optional[int] = typer.Option(None, "--train-hours", min=48, max=MAX_TRAIN_HOURS),
          until: Optional[str] = typer.Option(None, "--until", help="train on candles up to this time (UTC)")):
    """Train a model on closed candles, record a model_runs row, promote it if it passes the gate."""
    from jobs.train import train_market
    services = _services(settings)
    try:
        for m in _markets(settings, market):
            r = train_market(services, m, train_hours=train_hours or settings.train_hours,
                             until=_parse_until(until))
            typer.echo(r.summary())
    finally:
        services.close()


@app.command()
@command
def predict(settings, market: Optional[list[str]] = MarketOpt):
    """Write the forecast for the latest origin with the promoted model (kind = 'live')."""
    from jobs.predict import predict_market
    services = _services(settings)
    try:
        for m in _markets(settings, market):
            r = predict_market(services, m)
            typer.echo(r.summary())
    finally:
        services.close()


@app.command()
@command
def backtest(settings, market: str = typer.Option(..., "--market", "-m"),
             days: int = typer.Option(90, min=1, max=MAX_BACKFILL_DAYS), step: int = typer.Option(24, min=1),
             retrain_every: int = typer.Option(168, "--retrain-every", min=1, max=MAX_TRAIN_HOURS),
             train_hours: int = typer.Option(4320, "--train-hours", min=48, max=MAX_TRAIN_HOURS),
             horizon: Optional[int] = typer.Option(None, "--horizon", min=1, max=168)):
    """Walk-forward evaluation: writes kind='backtest' rows, prints MAE, rMAE, coverage next to naive."""
    from exchanges.base import parse_market
    from jobs.backtest import backtest_market
    services = _services(settings)
    try:
        r = backtest_market(services, parse_market(market), days=days, step=step, retrain_every=retrain_every,
                            train_hours=train_hours, horizon=horizon or settings.horizon)
    finally:
        services.close()
    typer.echo(r.report())


@app.command()
@command
def run(settings):
    """The long-running daemon: ingest, retrain and predict on schedules, catching up at start."""
    from jobs.daemon import run_daemon
    raise typer.Exit(run_daemon(settings))


@app.command()
@command
def status(settings, market: Optional[list[str]] = MarketOpt,
           as_json: bool = typer.Option(False, "--json", help="machine-readable output")):
    """Per market: last candle and its lag, promoted model and its metrics, last job runs."""
    from jobs.status import collect_status, render_status
    services = _services(settings)
    try:
        report = collect_status(services, _markets(settings, market))
    finally:
        services.close()
    typer.echo(render_status(report, as_json=as_json))


@app.command()
@command
def plot(settings, market: str = typer.Option(..., "--market", "-m"),
         out: Path = typer.Option(..., "--out", "-o", help="PNG file to write"),
         days: int = typer.Option(14, min=1), kind: str = typer.Option("live", help="live or backtest")):
    """Actual closes with the forecasts and their 80% band."""
    from exchanges.base import parse_market
    from jobs.plot import plot_market
    services = _services(settings)
    try:
        path = plot_market(services, parse_market(market), out, days=days, kind=kind)
    finally:
        services.close()
    typer.echo(f"wrote {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
