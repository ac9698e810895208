"""`forecaster plot`: actual closes with the forecasts and their 80% band, as a PNG."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd

from db.candles import load_frame, newest_open_time
from db.predictions import load_predictions
from exchanges.base import Market
from jobs.errors import JobError


def plot_market(services, market: Market, out: Path, *, days: int = 14, kind: str = "live") -> Path:
    import matplotlib
    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    with services.sessions() as s:
        newest = newest_open_time(session=s, exchange=market.exchange, symbol=market.symbol)
        if newest is None:
            raise JobError(f"{market}: no candles stored yet")
        since = newest - timedelta(days=days)
        candles = load_frame(session=s, exchange=market.exchange, symbol=market.symbol, since=since)
        preds = load_predictions(session=s, exchange=market.exchange, symbol=market.symbol, kind=kind, since=since)
    fig, ax = plt.subplots(figsize=(12, 5.5), dpi=110)
    # A candle's close is the price at open_time + 1h: draw it there.
    ax.plot(candles.index + pd.Timedelta(hours=1), candles["close"], color="black", lw=1.1, label="actual close")
    title = f"{market} — {kind} forecasts, last {days} days"
    if not preds.empty:
        _draw_forecasts(ax, preds)
        title += _accuracy_note(preds, candles)
    ax.set_title(title)
    ax.set_ylabel(f"price ({market.quote})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _draw_forecasts(ax, preds: pd.DataFrame) -> None:
    preds = preds.assign(target_end=pd.to_datetime(preds["target_time"], utc=True) + pd.Timedelta(hours=1))
    origins = sorted(preds["origin_time"].unique())
    newest = origins[-1]
    for i, origin in enumerate(origins):
        p = preds[preds["origin_time"] == origin]
        latest = origin == newest
        ax.fill_between(p["target_end"], p["yhat_lower"], p["yhat_upper"], color="tab:blue",
                        alpha=0.35 if latest else 0.10, lw=0,
                        label="80% band (latest)" if latest else ("80% band (earlier origins)" if i == 0 else None))
        ax.plot(p["target_end"], p["yhat"], color="tab:blue", lw=1.6 if latest else 0.8,
                label="forecast median (latest)" if latest else ("forecast median" if i == 0 else None))


def _accuracy_note(preds: pd.DataFrame, candles: pd.DataFrame) -> str:
    close = candles["close"]
    actual = close.reindex(pd.to_datetime(preds["target_time"], utc=True)).to_numpy()
    naive = close.reindex(pd.to_datetime(preds["origin_time"], utc=True)).to_numpy()
    mask = ~(pd.isna(actual) | pd.isna(naive))
    if mask.sum() == 0:
        return ""
    y, f, n = actual[mask], preds["yhat"].to_numpy()[mask], naive[mask]
    lo, hi = preds["yhat_lower"].to_numpy()[mask], preds["yhat_upper"].to_numpy()[mask]
    mae, naive_mae = abs(f - y).mean(), abs(n - y).mean()
    cover = ((y >= lo) & (y <= hi)).mean()
    return f"\nout-of-sample: MAE {mae:.4g} vs naive {naive_mae:.4g} (rMAE {mae / naive_mae:.3f}), band coverage {cover:.0%}"
