"""Commands that fill the database: `db upgrade`, `ingest`, `import-csv`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli.app import MARKET_HELP, MarketOpt, app, chosen_markets, command, db_app, expected_errors, open_services
from jobs.settings import MAX_BACKFILL_DAYS


@db_app.command("upgrade")
@command
def db_upgrade(settings):
    """Apply all migrations (Alembic `upgrade head`); safe to run twice."""
    from db.engine import safe_url
    from db.migrate import current_revision, upgrade
    services = open_services(settings, migrated=False)
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
    services = open_services(settings)
    failed = []
    try:
        for m in chosen_markets(settings, market):
            try:
                r = ingest_market(services, m,
                                  backfill_days=settings.backfill_days if backfill_days is None else backfill_days)
                typer.echo(f"{m}: {r.new_rows} new candles, newest {r.newest:%Y-%m-%dT%H:%M}Z" if r.newest
                           else f"{m}: no candles")
            except expected_errors() as e:
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
    services = open_services(settings)
    try:
        r = import_csv(services, path, m)
    finally:
        services.close()
    typer.echo(f"{m}: {r.rows_read} rows read, {r.new_rows} new candles")
