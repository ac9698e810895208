"""Which page a request gets, and the HTML around it. Market keys from the URL go through the one
key parser (exchanges.base.parse_market); a key it refuses, or a market this daemon does not serve,
is a 404 page, and no query is run for it. Every page's queries run in one read-only transaction
(db.overview.read_only). Query parameters: `tz=utc|local` (the exchange's local time: KST for
Bithumb and Upbit, UTC for Binance), `h=N` on a market page (the horizon of the past bands)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qs, unquote

from core.market import Market, MarketError
from db.overview import read_only
from core.market import Market, MarketError
from exchanges.base import parse_market
from reports.web.accuracy import LiveAccuracy
from reports.web.format import ZONE_CHOICES, esc
from reports.web.market_page import read_market, render_market
from reports.web.overview import read_row, render_overview

log = logging.getLogger("forecaster.daemon")
HTML = "text/html; charset=utf-8"
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 8px}a{color:#0645ad}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}tr.fault{background:#fff4f4}.problem{color:#b00020}.status.failed{color:#b00020;font-weight:bold}
.status.ok{color:#1b7f3b}small{color:#555}nav{margin:0 0 12px}nav a.chosen{font-weight:bold;text-decoration:none;color:#222}
svg.chart{width:100%;max-width:960px;height:auto;display:block;margin:12px 0}
.grid{stroke:#eee}.axis{font-size:11px;fill:#555}.closes{fill:none;stroke:#222;stroke-width:1.2}
.band{fill:#3a7bd5;fill-opacity:.25;stroke:#3a7bd5;stroke-width:.8}.median{fill:none;stroke:#3a7bd5;stroke-width:1.5}
.origin{stroke:#999;stroke-dasharray:3 3}.past-band{stroke-width:2;stroke-opacity:.35}
.past-band.hit{stroke:#1b7f3b}.past-band.miss{stroke:#b00020}circle.hit{fill:#1b7f3b}circle.miss{fill:#b00020}
.key{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
.key.closes{background:#222}.key.band{background:#9dbdea}.key.hit{background:#1b7f3b}.key.miss{background:#b00020}
"""


@dataclass(frozen=True)
class Page:
    status: int
    body: bytes
    content_type: str = HTML


class Pages:
    def __init__(self, sessions, markets: list[Market]) -> None:
        self.sessions, self.markets = sessions, list(markets)
        self.live = LiveAccuracy()

    def answer(self, raw_path: str) -> Page | None:
        """The page for a request path (with its query), or None if the path is not a page."""
        path, _, query = raw_path.partition("?")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        tz = params.get("tz", "utc")
        if tz not in ZONE_CHOICES:
            tz = "utc"
        if path == "/":
            return self._overview(tz)
        if path.startswith("/market/"):
            return self._market(unquote(path[len("/market/"):]), tz, params.get("h"))
        return None

    def _overview(self, tz: str) -> Page:
        now = datetime.now(timezone.utc)
        with self.sessions() as s:
            read_only(s)
            rows = [read_row(s, m, now, self.live) for m in self.markets]
        table = render_overview(rows, tz)
        return Page(200, _layout("forecaster: markets", "/", tz, f"<h1>Markets ({len(rows)})</h1>{table}"))

    def _market(self, key: str, tz: str, h: str | None) -> Page:
        try:
            market = parse_market(key)
        except MarketError as e:
            return _not_found(str(e), tz)
        if market not in self.markets:
            return _not_found(f"{market} is not served by this daemon (FORECASTER_MARKETS)", tz)
        horizon = int(h) if h and h.isdigit() and 0 < int(h) <= 10_000 else None
        now = datetime.now(timezone.utc)
        with self.sessions() as s:
            read_only(s)
            row, chart, horizon = read_market(s, market, now, horizon, self.live)
        here = f"/market/{market}"
        body = (f'<h1>{esc(market)}</h1><p><a href="/?tz={tz}">all markets</a></p>'
                + render_market(row, chart, horizon, tz))
        return Page(200, _layout(f"forecaster: {market}", here, tz, body))


def _not_found(why: str, tz: str) -> Page:
    body = f'<h1>Not found</h1><p class="problem">{esc(why)}</p><p><a href="/?tz={tz}">all markets</a></p>'
    return Page(404, _layout("forecaster: not found", "/", tz, body))


def _layout(title: str, here: str, tz: str, body: str) -> bytes:
    links = " | ".join(f'<a href="{esc(here)}?tz={z}"{" class=chosen" if z == tz else ""}>'
                       f'{"UTC" if z == "utc" else "exchange time"}</a>' for z in ZONE_CHOICES)
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width,initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{esc(title)}</title><style>{_STYLE}</style></head>'
            f"<body><nav>times in: {links}</nav>{body}</body></html>").encode()
