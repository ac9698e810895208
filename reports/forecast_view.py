"""`forecaster forecast`: a market's newest live forecast with its band, as a trader reads it: prices
in the quote currency with thousands grouped (`3,565.80 USDT`, `1,134,060 KRW`), times in a zone of
the reader's choosing."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from core.market import Market
from db.latest_forecast import latest_forecast_rows
from jobs.errors import JobError

if TYPE_CHECKING:
    from jobs.bootstrap import Services

# Currencies quoted without cents once a price is in the thousands (exchanges tick in whole units).
WHOLE_UNITS = {"KRW", "JPY", "IDR", "VND"}

def price_decimals(value: float, quote: str) -> int:
    """Two decimals (cents), none for a whole-unit currency in the thousands, and five significant
    figures for small prices (a 0.0812 USDT coin keeps its digits)."""
    if not value or not math.isfinite(value):
        return 2
    magnitude = math.floor(math.log10(abs(value)))
    if quote in WHOLE_UNITS and magnitude >= 3:
        return 0
    return max(0 if quote in WHOLE_UNITS else 2, 4 - magnitude)


def format_price(value: float | None, quote: str, decimals: int | None = None) -> str:
    if value is None:
        return "-"
    places = price_decimals(value, quote) if decimals is None else decimals
    return f"{value:,.{places}f}"


@dataclass
class ForecastView:
    market: Market
    rows: list  # latest_forecast rows, by horizon

    def render(self, tz: str = "UTC") -> str:
        zone = ZoneInfo(tz)
        quote = self.market.quote
        first = self.rows[0]
        decimals = price_decimals(first.origin_close or first.yhat, quote)
        price = lambda v: format_price(v, quote, decimals)  # noqa: E731 (one column width for all)
        when = lambda t: _local(t, zone)  # noqa: E731
        lines = [f"{self.market}: forecast from the close of the candle opened {when(first.origin_time)} {tz} "
                 f"({price(first.origin_close)} {quote}), model run {first.model_run_id}",
                 f"{'step':>4}  {'target opens (' + tz + ')':<22} {'10%':>14} {'median':>14} {'90%':>14} "
                 f"{'change':>8} {'band':>7}"]
        for r in self.rows:
            change = f"{r.change_pct:+.2f}%" if r.change_pct is not None else "-"
            band = f"{r.band_width_pct:.2f}%" if r.band_width_pct is not None else "-"
            lines.append(f"{r.horizon:>4}  {when(r.target_time):<22} {price(r.yhat_lower):>14} {price(r.yhat):>14} "
                         f"{price(r.yhat_upper):>14} {change:>8} {band:>7}")
        lines.append(f"prices in {quote}; the band is the central 80% (10% to 90%); change from the last close")
        return "\n".join(lines)


def _local(t: datetime, zone: ZoneInfo) -> str:
    return t.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def latest_forecast_view(services: Services, market: Market) -> ForecastView:
    with services.sessions() as s:
        rows = latest_forecast_rows(session=s, market=market)
    if not rows:
        raise JobError(f"{market}: no live forecast yet (the daemon writes one after the first training; "
                       f"or run `forecaster train --market {market}` then `forecaster predict --market {market}`)")
    return ForecastView(market, rows)
