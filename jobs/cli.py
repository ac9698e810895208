"""`forecaster`: the command line. The only place that turns errors into exit codes."""
from __future__ import annotations

import functools
import inspect
import logging
from pathlib import Path
from typing import Optional

import typer

from core.names import ForecastKind
from forecaster.defaults import DEFAULTS
from jobs.settings import MAX_BACKFILL_DAYS, MAX_TRAIN_HOURS
from jobs.times import FORMAT_HELP

# The backtest's default span per interval, for --days: "90 for 1h, 30 for 15m, 180 for 4h, 360 for 1d".
BACKTEST_DAYS_HELP = ", ".join(f"{d.backtest_days} for {name}" for name, d in
                               sorted(DEFAULTS.items(), key=lambda item: item[0] != "1h"))

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Hourly crypto candles, an LSTM forecaster judged against the naive forecast, "
                       "forecasts as SQL tables.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
log = logging.getLogger("forecaster.cli")

MARKET_HELP = "exchange:BASE-QUOTE[@interval], e.g. bithumb:ETH-KRW or upbit:BTC-KRW@1d"
MarketOpt = typer.Option(None, "--market", "-m", metavar="MARKET", help=f"{MARKET_HELP}; repeat for several "
                         "(default: FORECASTER_MARKETS)")


def _expected_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import SQLAlchemyError

    from core.market import MarketError
    from exchanges.base import ExchangeError
    from jobs.bootstrap import NotMigrated
    from jobs.errors import JobError
    from jobs.import_csv import CsvError
    from jobs.settings import SettingsError
    return (SettingsError, ExchangeError, MarketError, NotMigrated, CsvError, JobError, SQLAlchemyError,
            ValueError, OSError)


def command(fn=None, *, daemon: bool = False):
    """Run a command with settings and logging set up; one `error:` line and exit 1 on a known
    failure. A one-shot command's failed job is that line alone; the daemon logs each one."""
    if fn is None:
        return functools.partial(command, daemon=daemon)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from jobs.logs import configure_logging
        from jobs.recording import describe_error, one_line
        from jobs.settings import SettingsError, load_settings, unknown_variable_warnings
        try:
            settings = load_settings()
        except SettingsError as e:
            typer.echo(f"error: {one_line(e)}", err=True)
            raise typer.Exit(2)
        configure_logging(settings.log_level, job_failures=daemon)
        for warning in unknown_variable_warnings():
            log.warning("%s", warning)
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
                                                       help="days of history to reach (default FORECASTER_BACKFILL_DAYS, 730)")):
    """One ingestion pass now: new closed candles since the last stored one."""
    from jobs.ingest import ingest_market
    from jobs.recording import describe_error
    services = _services(settings)
    failed = []
    try:
        for m in _markets(settings, market):
            try:
                r = ingest_market(services, m,
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
def import_csv_cmd(settings, path: Path = typer.Argument(..., metavar="PATH", help="CSV with header ts,open,high,low,close,volume"),
                   market: str = typer.Option(..., "--market", "-m", metavar="MARKET", help=MARKET_HELP)):
    """Load a CSV of one market's candles (its interval: @1d for daily); idempotent; a bad row stops it with nothing written."""
    from exchanges.base import parse_market
    from jobs.import_csv import import_csv
    m = parse_market(market)
    services = _services(settings)
    try:
        r = import_csv(services, path, m)
    finally:
        services.close()
    typer.echo(f"{m}: {r.rows_read} rows read, {r.new_rows} new candles")


@app.command()
@command
def train(settings, market: Optional[list[str]] = MarketOpt,
          train_hours: Optional[int] = typer.Option(None, "--train-hours", min=48, max=MAX_TRAIN_HOURS,
                                                    help="hours of candles the LSTM learns from "
                                                         "(default FORECASTER_TRAIN_HOURS, 4320)"),
          until: Optional[str] = typer.Option(None, "--until", help="train on candles up to this time, "
                                              f"{FORMAT_HELP} (default: the newest); such a model is "
                                              "not promoted unless --promote"),
          promote: bool = typer.Option(False, "--promote", help="with --until: let the model replace the "
                                       "promoted one if it passes the gate")):
    """Train a model on closed candles, record a model_runs row, promote it if it passes the gate."""
    from jobs.times import parse_time
    from jobs.train import train_market
    end = parse_time(until, "--until") if until is not None else None
    services = _services(settings)
    try:
        for m in _markets(settings, market):
            r = train_market(services, m, train_hours=train_hours or settings.train_steps_for(m.interval), until=end,
                             promote=end is None or promote)
            typer.echo(r.summary())
    finally:
        services.close()


@app.command()
@command
def predict(settings, market: Optional[list[str]] = MarketOpt,
            at: Optional[str] = typer.Option(None, "--at", help="forecast past origins instead of the newest: "
                                             f"one time or FROM..TO, {FORMAT_HELP}..2023-12-07T23:00Z; each "
                                             "with the newest model trained on candles up to it"),
            replace: bool = typer.Option(False, "--replace", help="with --at: forecast again origins that "
                                         "have a live forecast (the old one is kept in prediction_history)")):
    """Write the forecast for the latest origin with the promoted model (kind = 'live'), or with
    --at for past origins, so that forecast_accuracy scores them at once."""
    from jobs.times import parse_span
    span = parse_span(at, "--at") if at is not None else None
    services = _services(settings)
    try:
        for m in _markets(settings, market):
            if span is None:
                from jobs.predict import predict_market
                typer.echo(predict_market(services, m).summary())
            else:
                from jobs.predict_at import predict_at
                typer.echo(predict_at(services, m, *span, replace=replace).summary())
    finally:
        services.close()


@app.command()
@command
def backtest(settings, market: str = typer.Option(..., "--market", "-m", metavar="MARKET", help=MARKET_HELP),
             days: Optional[int] = typer.Option(None, min=1, max=MAX_BACKFILL_DAYS,
                                                help="days of origins, ending a horizon before the newest candle "
                                                     f"(default by interval: {BACKTEST_DAYS_HELP})"),
             step: int = typer.Option(1, min=1, help="steps (hours for 1h) between origins (1: every step, "
                                                     "as the daemon forecasts)"),
             retrain_every: Optional[int] = typer.Option(None, "--retrain-every", min=1, max=MAX_TRAIN_HOURS,
                                                         help="steps between refits (default a week: 168 for 1h)"),
             train_hours: Optional[int] = typer.Option(None, "--train-hours", min=48, max=MAX_TRAIN_HOURS,
                                                       help="the LSTM's training window in steps of the market's "
                                                            "interval (default 180 days: 4320 for 1h)"),
             horizon: Optional[int] = typer.Option(None, "--horizon", min=1, max=168,
                                                   help="steps ahead (default FORECASTER_HORIZON, or the "
                                                        "interval's: 24 for 1h, 7 for 1d)")):
    """Walk-forward evaluation: writes kind='backtest' rows, prints MAE, rMAE, coverage and interval score
    next to naive and the model-free bands, with a bootstrap interval."""
    from exchanges.base import parse_market
    from jobs.backtest import backtest_market
    services = _services(settings)
    try:
        from forecaster.defaults import backtest_defaults
        m = parse_market(market)
        d = backtest_defaults(m.interval)
        r = backtest_market(services, m, days=days or d["days"], step=step,
                            retrain_every=retrain_every or d["retrain_every"],
                            train_hours=train_hours or settings.train_steps_for(m.interval),
                            horizon=horizon or settings.horizon_for(m.interval))
    finally:
        services.close()
    typer.echo(r.report())


@app.command()
@command(daemon=True)
def run(settings):
    """The long-running daemon: ingest, retrain and predict on schedules, catching up at start."""
    from jobs.runtime.daemon import run_daemon
    raise typer.Exit(run_daemon(settings))


@app.command()
@command
def status(settings, market: Optional[list[str]] = typer.Option(
               None, "--market", "-m", metavar="MARKET", help=f"{MARKET_HELP}; repeat for several (default: every market "
               "configured in FORECASTER_MARKETS or found in the database)"),
           as_json: bool = typer.Option(False, "--json", help="machine-readable output")):
    """Per market: last candle and its lag, promoted model and its metrics, last job and backtest runs."""
    from exchanges.base import parse_market
    from jobs.status import collect_status, render_status
    services = _services(settings)
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
    from jobs.forecast_view import latest_forecast_view
    from jobs.times import check_zone
    check_zone(tz)
    services = _services(settings)
    try:
        views = [latest_forecast_view(services, m) for m in _markets(settings, market)]
    finally:
        services.close()
    typer.echo("\n\n".join(v.render(tz) for v in views))


@app.command()
@command
def plot(settings, market: str = typer.Option(..., "--market", "-m", metavar="MARKET", help=MARKET_HELP),
         out: Path = typer.Option(..., "--out", "-o", help="PNG file to write"),
         days: int = typer.Option(14, min=1, help="days of candles and forecast origins shown, up to the "
                                  "newest candle"),
         kind: ForecastKind = typer.Option(ForecastKind.LIVE, "--kind", help="which forecasts"),
         horizon: Optional[int] = typer.Option(None, "--horizon", min=1, help="hours ahead of the band drawn "
                                               "along the past, with its hits and misses (default: the longest)"),
         tz: str = typer.Option("UTC", "--tz", help="time zone of the time axis, e.g. Asia/Seoul")):
    """Actual closes, the newest forecast with its 80% band, and how past bands did."""
    from exchanges.base import parse_market
    from jobs.plot import plot_market
    services = _services(settings)
    try:
        chart = plot_market(services, parse_market(market), out, days=days, kind=kind.value, horizon=horizon,
                            tz=tz)
    finally:
        services.close()
    typer.echo(f"wrote {chart.path}")


def main() -> None:
    """Run the command line; a usage error (an unknown option, a --kind that is not one) is one
    `error:` line and exit status 2, like every other failure, instead of a framed box."""
    import sys
    try:
        result = app(standalone_mode=False)
    except Exception as exc:
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        message = exc.format_message()
        if type(exc).__name__ == "NoArgsIsHelpError":  # `forecaster` alone: the help, as it asks
            typer.echo(message, err=True)
        else:
            from jobs.recording import one_line
            message = one_line(" ".join(message.replace("Value error, ", "").split()))
            hint = getattr(getattr(exc, "ctx", None), "command_path", None)
            typer.echo(f"error: {message}" + (f" (see `{hint} --help`)" if hint else ""), err=True)
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
