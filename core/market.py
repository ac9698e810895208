"""The market key of every layer: exchange, base, quote and candle interval, passed whole.

Its one text form, used in logs, locks, status, job_runs and messages (CONTRACT.md):
`exchange:BASE-QUOTE` for hourly candles (as before intervals existed) and
`exchange:BASE-QUOTE@interval` otherwise. `parse_market_text` reads it back; the checks that need
the exchange table (a known exchange, an interval it serves) are exchanges.base.parse_market's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .intervals import DEFAULT_INTERVAL, Interval, get_interval

MAX_SYMBOL_CHARS = 32  # the symbol columns are String(32) (db/models.py): Postgres refuses longer ones
_MARKET_RE = re.compile(r"^(?P<exchange>[a-z]+):(?P<base>[A-Z0-9]+)-(?P<quote>[A-Z0-9]+)(@(?P<interval>\w+))?$")


class MarketError(ValueError):
    """A market string is not of the form `exchange:BASE-QUOTE[@interval]`."""


@dataclass(frozen=True)
class Market:
    """The market key of every layer: exchange, symbol and candle interval (CONTRACT.md)."""

    exchange: str
    base: str
    quote: str
    interval: str = DEFAULT_INTERVAL

    @property
    def symbol(self) -> str:
        return f"{self.base}-{self.quote}"

    @property
    def period(self) -> Interval:
        """The interval's time arithmetic: `period.step` is one candle's length, then steps per day,
        the lag in steps... (`interval` is its name, as stored)."""
        return get_interval(self.interval)

    def __str__(self) -> str:
        """`bithumb:ETH-KRW` for hourly candles, `upbit:ETH-KRW@1d` otherwise: the one text form."""
        suffix = "" if self.interval == DEFAULT_INTERVAL else f"@{self.interval}"
        return f"{self.exchange}:{self.symbol}{suffix}"

    @classmethod
    def from_columns(cls, exchange: str, symbol: str, interval: str) -> "Market":
        """The key of a stored row (its exchange, `BASE-QUOTE` symbol and interval columns)."""
        base, _, quote = symbol.partition("-")
        return cls(exchange, base, quote, interval)


def parse_market_text(text: str) -> Market:
    """The syntax of a market: `bithumb:ETH-KRW` or `upbit:ETH-KRW@1d`, in any case
    (`Binance:eth-usdt@4H` is `binance:ETH-USDT@4h`); exchange lower case, symbol upper case with
    a dash, interval a supported one (default 1h). White space is refused, not stripped:
    `upbit:ETH-KRW\\n` is a script's mistake (a line read with its newline), better named than
    guessed at. Whether the exchange exists and serves the interval is not checked here."""
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise MarketError(f"market {shown(text)} has white space or a control character in it")
    exchange, colon, rest = text.partition(":")
    symbol, at, interval = rest.partition("@")
    m = _MARKET_RE.match(f"{exchange.lower()}{colon}{symbol.upper()}{at}{interval.lower()}")
    if not m:
        raise MarketError(f"market {shown(text)} is not of the form exchange:BASE-QUOTE[@interval] "
                          "(e.g. bithumb:ETH-KRW, upbit:BTC-KRW@1d)")
    return Market(m["exchange"], m["base"], m["quote"], m["interval"] or DEFAULT_INTERVAL)


def shown(text: str) -> str:
    """The market as given, for an error line; a long one shortened (it may be pasted garbage)."""
    return repr(text) if len(text) <= 60 else f"{text[:60]!r}... ({len(text)} characters)"
