"""Which client serves which exchange. Adding an exchange: one module with a client class, one line here."""
from __future__ import annotations

from typing import Any

import requests

from .base import ExchangeClient
from .binance import BinanceClient
from .bithumb import BithumbClient
from .upbit import UpbitClient

CLIENTS: dict[str, type] = {
    "bithumb": BithumbClient,
    "upbit": UpbitClient,
    "binance": BinanceClient,
}

DEFAULT_URLS: dict[str, str] = {
    "bithumb": "https://api.bithumb.com",
    "upbit": "https://api.upbit.com",
    "binance": "https://api.binance.com",
}

def make_client(exchange: str, base_url: str | None, session: requests.Session, **options: Any) -> ExchangeClient:
    """The client for `exchange` at `base_url` (None: the exchange's public API root).

    `options` go to the client's constructor (timeout, max_pages, pause, ...).
    """
    try:
        cls = CLIENTS[exchange]
    except KeyError:
        raise ValueError(f"unknown exchange {exchange!r} (known: {', '.join(sorted(CLIENTS))})") from None
    return cls(base_url or DEFAULT_URLS[exchange], session, **options)
