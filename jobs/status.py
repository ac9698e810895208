"""`forecaster status`: per market, the newest candle and its lag, the promoted model with its
validation figures and age, the newest forecast origin, and the last run of each job. Read-only;
never imports torch."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from db.candles import count_candles, newest_open_time
from db.engine import safe_url
from db.job_runs import last_run
from db.model_runs import promoted_run
from db.predictions import newest_origin
from exchanges.base import HOUR, Market, last_closed_open_time

JOBS = ("ingest", "train", "predict")
_MODEL_FIELDS = ("val_rmae", "val_coverage", "val_mae", "val_naive_mae", "n_train", "n_val", "epochs", "device")


def collect_status(services, markets: list[Market], *, now: datetime | None = None) -> dict:
    """A JSON-ready report (times as aware datetimes until rendered)."""
    now = now or datetime.now(timezone.utc)
    with services.sessions() as s:
        return {"now": now, "database": safe_url(services.settings.database_url),
                "markets": [_market_status(s, m, now) for m in markets]}


def _market_status(s, market: Market, now: datetime) -> dict:
    ex, sym = market.exchange, market.symbol
    newest = newest_open_time(session=s, exchange=ex, symbol=sym)
    run = promoted_run(session=s, exchange=ex, symbol=sym)
    model = None
    if run is not None:
        model = {"id": run.id, "finished_at": run.finished_at, "train_end": run.train_end,
                 "age_hours": _hours(now - run.finished_at) if run.finished_at else None,
                 **{k: getattr(run, k) for k in _MODEL_FIELDS}}
    jobs = {}
    for job in JOBS:
        last, ok = (last_run(session=s, job=job, exchange=ex, symbol=sym, status=st) for st in (None, "ok"))
        jobs[job] = None if last is None else {
            "status": last.status, "started_at": last.started_at, "finished_at": last.finished_at,
            "seconds": (last.finished_at - last.started_at).total_seconds() if last.finished_at else None,
            "rows": last.rows, "message": last.message, "last_ok_at": ok.started_at if ok else None}
    return {"market": str(market), "candles": count_candles(session=s, exchange=ex, symbol=sym),
            "newest_candle": newest,
            "lag_hours": _hours(last_closed_open_time(now) - newest) if newest else None,
            "model": model, "newest_origin": newest_origin(session=s, exchange=ex, symbol=sym),
            "jobs": jobs}


def _hours(delta) -> float:
    return round(delta / HOUR, 2)


def render_status(report: dict, *, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(report, indent=2, default=_json_default)
    lines = [f"{report['database']} at {_t(report['now'])}"]
    for m in report["markets"]:
        lines += ["", m["market"]]
        if m["newest_candle"]:
            lines.append(f"  newest candle   {_t(m['newest_candle'])}  lag {m['lag_hours']:g} h  "
                         f"({m['candles']} candles)")
        else:
            lines.append("  newest candle   none: run `forecaster ingest` or start `forecaster run`")
        lines.append(f"  promoted model  {_model_line(m['model'])}")
        origin = m["newest_origin"]
        behind = (f"  ({_hours(m['newest_candle'] - origin):g} h behind the newest candle)"
                  if origin and m["newest_candle"] and origin < m["newest_candle"] else "")
        lines.append(f"  newest forecast {'origin ' + _t(origin) if origin else 'none'}{behind}")
        for job in JOBS:
            lines.append(f"  {job:<15} {_job_line(m['jobs'][job])}")
    return "\n".join(lines)


def _model_line(model: dict | None) -> str:
    if model is None:
        return "none (no model has passed the gate yet)"
    figures = []
    if model["val_rmae"] is not None:
        figures.append(f"val rMAE {model['val_rmae']:.4f}")
    if model["val_coverage"] is not None:
        figures.append(f"80% coverage {model['val_coverage']:.3f}")
    if model["val_mae"] is not None and model["val_naive_mae"] is not None:
        figures.append(f"MAE {model['val_mae']:.6g} vs naive {model['val_naive_mae']:.6g}")
    age = f", {model['age_hours']:g} h old" if model["age_hours"] is not None else ""
    return f"run {model['id']}, trained to {_t(model['train_end'])}{age}: " + ", ".join(figures)


def _job_line(run: dict | None) -> str:
    if run is None:
        return "never run"
    took = f" in {run['seconds']:.1f}s" if run["seconds"] is not None else ""
    rows = f", {run['rows']} rows" if run["rows"] is not None else ""
    text = f"{run['status']:<7} {_t(run['started_at'])}{took}{rows}"
    if run["message"]:
        text += f": {run['message'][:120]}"
    if run["status"] != "ok":
        text += f" (last ok {_t(run['last_ok_at']) if run['last_ok_at'] else 'never'})"
    return text


def _t(ts: datetime | None) -> str:
    return f"{ts:%Y-%m-%dT%H:%M}Z" if ts else "-"


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
