"""How the pages write values: prices in the quote currency with digit grouping, shares in
percent, times in UTC or the exchange's local time. Every function returns text that is already
HTML-escaped, so a page can put it anywhere."""
from __future__ import annotations

import html
from datetime import datetime, timedelta, timezone, tzinfo

KST = timezone(timedelta(hours=9), "KST")  # Korea keeps no daylight saving time: a fixed offset is exact
# The exchange's own clock: the Korean exchanges show prices in KST, Binance in UTC.
LOCAL_ZONES: dict[str, tzinfo] = {"bithumb": KST, "upbit": KST, "binance": timezone.utc}
ZONE_CHOICES = ("utc", "local")


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def zone_for(exchange: str, choice: str) -> tzinfo:
    return LOCAL_ZONES.get(exchange, timezone.utc) if choice == "local" else timezone.utc


def decimals_for(value: float) -> int:
    """Enough decimals to tell neighbouring ticks apart: none for 3,456,000 KRW, two for
    2,345.67 USDT, four significant digits below 1."""
    size = abs(value)
    if size >= 10_000:
        return 0
    if size >= 1:
        return 2
    if size == 0:
        return 2
    digits = 0
    while size < 1:
        size *= 10
        digits += 1
    return digits + 3


def price(value: float | None, quote: str = "", *, like: float | None = None) -> str:
    """`3,456,000 KRW`; `like`: format with the decimals of another value (a band beside its close)."""
    if value is None:
        return "-"
    text = f"{value:,.{decimals_for(like if like is not None else value)}f}"
    return esc(f"{text} {quote}".strip())


def percent(share: float | None, digits: int = 0) -> str:
    return "-" if share is None else esc(f"{100 * share:.{digits}f}%")


def when(ts: datetime | None, zone: tzinfo) -> str:
    if ts is None:
        return "-"
    local = ts.astimezone(zone)
    return esc(f"{local:%Y-%m-%d %H:%M} {local.tzname()}")


def short_when(ts: datetime, zone: tzinfo) -> str:
    return esc(f"{ts.astimezone(zone):%m-%d %H:%M}")
