"""`forecaster status`: per market, the newest candle and its lag, the promoted model with its
validation figures and age, the newest forecast origin, the last run of each job and the last
backtest. Every market of the store is shown, configured (FORECASTER_MARKETS) or not, and marked
as such. Read-only; never imports torch."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from core.market import Market
from core.names import JOBS, JobStatus
from db.backtest_runs import last_backtest_run
from db.candles import count_candles, newest_open_time
from db.engine import safe_url
from db.job_runs import last_run
from db.markets import stored_markets
from db.model_runs import promoted_run
from db.predictions import newest_origin
from core.market import Market
from jobs.figures import validation_line
from core.intervals import describe_steps

if TYPE_CHECKING:
    from jobs.bootstrap import Services

_MODEL_FIELDS = ("val_rmae", "val_coverage", "val_mae", "val_naive_mae", "val_interval_score",
                 "val_free_interval_score", "n_train", "n_val", "epochs", "device")
_BACKTEST_FIELDS = ("days", "step", "retrain_every", "train_hours", "horizon", "first_origin", "last_origin",
                    "n_origins", "n_fits", "mae", "naive_mae", "rmae", "coverage", "interval_score",
                    "empirical_interval_score", "ratio_vs_empirical", "ratio_low", "ratio_high", "code_version")


def collect_status(services: Services, configured: list[Market], *, only: list[Market] | None = None,
                   now: datetime | None = None) -> dict:
    """A JSON-ready report (times as aware datetimes until rendered): the markets in `only`, or
    else every configured market and every market the database holds."""
    now = now or datetime.now(timezone.utc)
    with services.sessions() as s:
        if only is not None:
            markets = list(dict.fromkeys(only))
        else:
            stored = [m for m in stored_markets(session=s) if m.quote]  # a symbol without a dash is no market
            markets = list(dict.fromkeys([*configured, *stored]))
        return {"now": now, "database": safe_url(services.settings.database_url),
                "markets": [_market_status(s, m, now, m in configured) for m in markets]}


def _market_status(s, market: Market, now: datetime, configured: bool) -> dict:
    newest = newest_open_time(session=s, market=market)
    run = promoted_run(session=s, market=market)
    model = None
    if run is not None:
        model = {"id": run.id, "finished_at": run.finished_at, "train_end": run.train_end,
                 "age_hours": _hours(now - run.finished_at) if run.finished_at else None,
                 **{k: getattr(run, k) for k in _MODEL_FIELDS}}
    jobs = {}
    for job in JOBS:
        last, ok = (last_run(session=s, job=job, market=market, status=st) for st in (None, JobStatus.OK))
        jobs[job] = None if last is None else {
            "status": last.status, "started_at": last.started_at, "finished_at": last.finished_at,
            "seconds": (last.finished_at - last.started_at).total_seconds() if last.finished_at else None,
            "rows": last.rows, "message": last.message, "last_ok_at": ok.started_at if ok else None}
    backtest = last_backtest_run(session=s, market=market)
    return {"market": str(market), "configured": configured,
            "candles": count_candles(session=s, market=market),
            "newest_candle": newest,
            "interval": market.interval,
            "lag_steps": market.period.closed_after(newest, now) if newest else None,
            "lag_hours": (market.period.closed_after(newest, now) * market.period.minutes / 60) if newest else None,
            "model": model, "newest_origin": newest_origin(session=s, market=market),
            "jobs": jobs,
            "backtest": None if backtest is None else {
                "id": backtest.id, "finished_at": backtest.finished_at,
                **{k: getattr(backtest, k) for k in _BACKTEST_FIELDS}}}


def _hours(delta) -> float:
    return round(delta / timedelta(hours=1), 2)


def _steps(delta: timedelta, interval: str) -> float:
    """A time span in steps of the market's interval (whole ones, unless the candles are uneven)."""
    from core.intervals import get_interval
    return round(delta / get_interval(interval).step, 2)


def render_status(report: dict, *, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(report, indent=2, default=_json_default)
    lines = [f"{report['database']} at {_t(report['now'])}"]
    for m in report["markets"]:
        served = "configured" if m["configured"] else "in the database only, not in FORECASTER_MARKETS"
        lines += ["", f"{m['market']}  ({m['interval']} candles, {served})"]
        if m["newest_candle"]:
            lag = describe_steps(m["lag_steps"], m["interval"])
            lines.append(f"  newest candle   {_t(m['newest_candle'])}  lag {lag}  ({m['candles']} candles)")
        else:
            lines.append("  newest candle   none: run `forecaster ingest` or start `forecaster run`")
        lines.append(f"  promoted model  {_model_line(m['model'])}")
        origin = m["newest_origin"]
        behind = (f"  ({describe_steps(_steps(m['newest_candle'] - origin, m['interval']), m['interval'])} "
                  "behind the newest candle)" if origin and m["newest_candle"] and origin < m["newest_candle"] else "")
        lines.append(f"  newest forecast {'origin ' + _t(origin) if origin else 'none'}{behind}")
        for job in JOBS:
            lines.append(f"  {job:<15} {_job_line(m['jobs'][job])}")
        lines.append(f"  last backtest   {_backtest_line(m['backtest'], m['interval'])}")
    return "\n".join(lines)


def _model_line(model: dict | None) -> str:
    if model is None:
        return "none (no model has passed the gate yet)"
    age = f", {model['age_hours']:g} h old" if model["age_hours"] is not None else ""
    return f"run {model['id']}, trained to {_t(model['train_end'])}{age}: {validation_line(model)}"


def _backtest_line(run: dict | None, interval: str) -> str:
    if run is None:
        return "none"
    if run["days"] is None:  # the run standing for backtest rows written before migration 0005
        return (f"run {run['id']}, {run['n_origins']} origins {_t(run['first_origin'])}..{_t(run['last_origin'])}, "
                "settings not recorded (made before this release)")
    ratio = (f", interval score / empirical band's {run['ratio_vs_empirical']:.3f} "
             f"({run['ratio_low']:.3f}-{run['ratio_high']:.3f})" if run["ratio_vs_empirical"] is not None else "")
    return (f"run {run['id']} at {_t(run['finished_at'])}: {run['days']} days, stride {describe_steps(run['step'], interval)}, "
            f"{run['n_origins']} origins to {_t(run['last_origin'])}, rMAE {_f(run['rmae'], '.4f')}, "
            f"coverage {_f(run['coverage'], '.3f')}{ratio}")


def _f(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _job_line(run: dict | None) -> str:
    if run is None:
        return "never run"
    took = f" in {run['seconds']:.1f}s" if run["seconds"] is not None else ""
    rows = f", {run['rows']} rows" if run["rows"] is not None else ""
    text = f"{run['status']:<7} {_t(run['started_at'])}{took}{rows}"
    if run["message"]:
        text += f": {run['message'][:120]}"
    if run["status"] != JobStatus.OK:
        text += f" (last ok {_t(run['last_ok_at']) if run['last_ok_at'] else 'never'})"
    return text


def _t(ts: datetime | None) -> str:
    return f"{ts:%Y-%m-%dT%H:%M}Z" if ts else "-"


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
