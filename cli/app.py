"""The `forecaster` Typer app and what every command shares: the `command` wrapper that loads the
settings and turns known failures into one `error:` line and an exit code, the market option, and
the services a command opens. The commands themselves live one module per group beside it."""
from __future__ import annotations

import functools
import inspect
import logging
import typing
from typing import Optional

import typer

from core.intervals import DEFAULT_INTERVAL, SUPPORTED

OTHER_INTERVALS = ", ".join(i for i in SUPPORTED if i != DEFAULT_INTERVAL)
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help=f"Crypto candles (hourly, or {OTHER_INTERVALS}), an LSTM forecaster judged against the naive "
                       "forecast, forecasts as SQL tables.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
log = logging.getLogger("forecaster.cli")

MARKET_HELP = "exchange:BASE-QUOTE[@interval], e.g. bithumb:ETH-KRW or upbit:BTC-KRW@1d"
MarketOpt = typer.Option(None, "--market", "-m", metavar="MARKET", help=f"{MARKET_HELP}; repeat for several "
                         "(default: FORECASTER_MARKETS)")


def expected_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import SQLAlchemyError

    from exchanges.base import ExchangeError, MarketError
    from jobs.bootstrap import NotMigrated
    from jobs.import_csv import CsvError
    from jobs.settings import SettingsError
    from jobs.errors import JobError
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
        except expected_errors() as e:
            typer.echo(f"error: {describe_error(e)}", err=True)
            log.debug("details", exc_info=True)
            raise typer.Exit(1)
    # Typer reads the signature: show it the command's options without the injected settings, their
    # types resolved here, in the command's module (Typer would read this module's names instead).
    del wrapper.__wrapped__
    hints = typing.get_type_hints(fn)
    options = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in list(inspect.signature(fn).parameters.values())[1:]]
    wrapper.__signature__ = inspect.signature(fn).replace(parameters=options)
    wrapper.__annotations__ = {p.name: p.annotation for p in options}
    return wrapper


def old_option_name(value, old_value, name: str, old_name: str):
    """The value of an option given by its name or by its old one (hidden, still accepted);
    both at once is a usage error, as the two might differ."""
    if value is not None and old_value is not None:
        raise typer.BadParameter(f"{old_name} is the old name of {name}: give one of them")
    return value if value is not None else old_value


def chosen_markets(settings, market: Optional[list[str]]):
    from exchanges.base import parse_market
    return [parse_market(m) for m in market] if market else settings.market_list()


def open_services(settings, *, migrated: bool = True):
    from jobs.bootstrap import bootstrap
    services = bootstrap(settings)
    if migrated:
        services.require_schema()
    return services
