"""Commands that train models and forecast with them: `train`, `predict`, `backtest`."""
from __future__ import annotations

from typing import Optional

import typer

from cli.app import MARKET_HELP, MarketOpt, app, chosen_markets, command, old_option_name, open_services
from jobs.settings import MAX_BACKFILL_DAYS, MAX_TRAIN_STEPS
from forecaster.defaults import DEFAULTS
from jobs.times import FORMAT_HELP

# The backtest's default span per interval, for --days: "90 for 1h, 30 for 15m, 180 for 4h, 360 for 1d".
BACKTEST_DAYS_HELP = ", ".join(f"{d.backtest_days} for {name}" for name, d in
                               sorted(DEFAULTS.items(), key=lambda item: item[0] != "1h"))


@app.command()
@command
def train(settings, market: Optional[list[str]] = MarketOpt,
          train_steps: Optional[int] = typer.Option(None, "--train-steps", min=48, max=MAX_TRAIN_STEPS,
                                                    help="the training window in steps of the market's interval "
                                                         "(default FORECASTER_TRAIN_STEPS, or the interval's: "
                                                         "4320 for 1h, 720 for 1d)"),
          train_hours: Optional[int] = typer.Option(None, "--train-hours", min=48, max=MAX_TRAIN_STEPS, hidden=True,
                                                    help="the old name of --train-steps"),
          until: Optional[str] = typer.Option(None, "--until", help="train on candles up to this time, "
                                              f"{FORMAT_HELP} (default: the newest); such a model is "
                                              "not promoted unless --promote"),
          promote: bool = typer.Option(False, "--promote", help="with --until: let the model replace the "
                                       "promoted one if it passes the gate")):
    """Train a model on closed candles, record a model_runs row, promote it if it passes the gate."""
    from jobs.times import parse_time
    from jobs.train import train_market
    end = parse_time(until, "--until") if until is not None else None
    train_steps = old_option_name(train_steps, train_hours, "--train-steps", "--train-hours")
    services = open_services(settings)
    try:
        for m in chosen_markets(settings, market):
            r = train_market(services, m, train_hours=train_steps or settings.train_steps_for(m.interval), until=end,
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
    services = open_services(settings)
    try:
        for m in chosen_markets(settings, market):
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
             stride: Optional[int] = typer.Option(None, "--stride", min=1,
                                                  help="steps of the market's interval between origins (default 1: "
                                                       "every step, as the daemon forecasts)"),
             step: Optional[int] = typer.Option(None, "--step", min=1, hidden=True, help="the old name of --stride"),
             retrain_every: Optional[int] = typer.Option(None, "--retrain-every", min=1, max=MAX_TRAIN_STEPS,
                                                         help="steps between refits (default a week: 168 for 1h)"),
             train_steps: Optional[int] = typer.Option(None, "--train-steps", min=48, max=MAX_TRAIN_STEPS,
                                                       help="the LSTM's training window in steps of the market's "
                                                            "interval (default 180 days: 4320 for 1h)"),
             train_hours: Optional[int] = typer.Option(None, "--train-hours", min=48, max=MAX_TRAIN_STEPS, hidden=True,
                                                    help="the old name of --train-steps"),
             horizon: Optional[int] = typer.Option(None, "--horizon", min=1, max=168,
                                                   help="steps ahead (default FORECASTER_HORIZON, or the "
                                                        "interval's: 24 for 1h, 7 for 1d)")):
    """Walk-forward evaluation: writes kind='backtest' rows, prints MAE, rMAE, coverage and interval score
    next to naive and the model-free bands, with a bootstrap interval."""
    from exchanges.base import parse_market
    from jobs.backtest import backtest_market
    stride = old_option_name(stride, step, "--stride", "--step") or 1
    train_steps = old_option_name(train_steps, train_hours, "--train-steps", "--train-hours")
    services = open_services(settings)
    try:
        from forecaster.defaults import backtest_defaults
        m = parse_market(market)
        d = backtest_defaults(m.interval)
        r = backtest_market(services, m, days=days or d["days"], step=stride,
                            retrain_every=retrain_every or d["retrain_every"],
                            train_hours=train_steps or settings.train_steps_for(m.interval),
                            horizon=horizon or settings.horizon_for(m.interval))
    finally:
        services.close()
    typer.echo(r.report())
