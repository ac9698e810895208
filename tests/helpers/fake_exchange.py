"""A real HTTP server on 127.0.0.1 that serves Bithumb, Upbit and Binance candle endpoints from memory.

Each exchange lives under its own prefix, so one server stands in for all three base URLs:
`{url}/bithumb` (public hourly candlestick + v1), `{url}/upbit` (v1), `{url}/binance` (klines). Every
interval the clients use is served in the exchange's own format: v1 `minutes/5|15|60|240` and `days`
(day rows with `prev_closing_price`, minute rows with `unit`), klines `interval=5m|15m|1h|4h|1d` (close
time = open + step - 1 ms). A market's candles must lie on its exchange's grid (`grid_of(market)`:
Bithumb's days open at 15:00 UTC); `tests.helpers.candle_data.candles_for` makes them from the real hourly
CSVs (`load_csv_slice`), for tests only. The clock `now` decides what exists: candles opening after it
do not; the one whose interval contains it is served as an open candle with partial values, as
exchanges do. `now=None` follows the wall clock (use `retime` so the data ends at the current hour).
Faults are queued with `fail_next`; every request is counted per path. Run in-process (context
manager) or as `python -m tests.helpers.fake_exchange --serve bithumb:ETH-KRW=PATH.csv --port N` (see `main`).
"""
from __future__ import annotations

import argparse
import bisect
import json
import threading
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from core.candle import Candle
from core.grid import EPOCH
from core.market import Market
from exchanges.base import parse_market
from exchanges.registry import EXCHANGES, grid_of

from tests.helpers.candle_data import candles_for, load_csv_slice, retime  # noqa: F401 (tests import them from here)
from tests.helpers.paths import BINANCE_CSV as USDT_CSV
from tests.helpers.paths import TEST_DATA as DATA_DIR
from tests.helpers.paths import UPBIT_CSV as KRW_CSV  # real Upbit ETH/KRW; stands in for Bithumb too
KST = timedelta(hours=9)
FAULT_KINDS = ("timeout", "500", "429", "html", "bithumb_5600", "bad_row", "garbage", "disconnect", "empty", "short",
               "drip")
HTML_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
            "</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n")
# The v1 candle endpoints (after /v1/candles/) the fake holds data for, and the interval of each.
V1_KINDS = {"minutes/5": "5m", "minutes/15": "15m", "minutes/60": "1h", "minutes/240": "4h", "days": "1d"}
# Every `interval` value Binance accepts (its docs); the fake holds data for 5m, 15m, 1h, 4h and 1d.
BINANCE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")


def _utc(value: str | datetime) -> datetime:
    ts = datetime.fromisoformat(value) if isinstance(value, str) else value
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _ms(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(milliseconds=1)


@dataclass
class _Fault:
    kind: str
    times: int
    path_contains: str | None
    skip: int = 0
    opts: dict = field(default_factory=dict)


class _Reply(Exception):
    """Raised inside a route to answer at once (errors the real API gives)."""

    def __init__(self, status: int, body):
        self.status, self.body = status, body


class FakeExchange:
    """See the module docstring. `bithumb_window` is how many latest candles the public endpoint returns."""

    def __init__(self, markets: dict[str, list[Candle]] | None = None, *, now: datetime | None = None,
                 bithumb_window: int = 500, timeout_delay: float = 2.0, host: str = "127.0.0.1", port: int = 0):
        self.bithumb_window = bithumb_window
        self.timeout_delay = timeout_delay  # how long a "timeout" fault stalls; keep above the client's timeout
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._series: dict[Market, list[Candle]] = {}
        self._open_times: dict[Market, list[datetime]] = {}  # per series, for bisecting
        self._faults: list[_Fault] = []
        self._now = _utc(now) if now is not None else None
        self.counts: Counter[str] = Counter()
        self.log: deque[tuple[str, dict]] = deque(maxlen=10_000)  # (path, query) of recent requests
        for market, candles in (markets or {}).items():
            self.set_candles(market, candles)
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._thread: threading.Thread | None = None

    # -- lifecycle and addresses
    def start(self) -> FakeExchange:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-exchange", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()  # wakes handlers stalled by a "timeout" fault
        if self._thread:
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()

    def __enter__(self) -> FakeExchange:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, exchange: str) -> str:
        return f"{self.url}/{exchange}"

    def env(self) -> dict[str, str]:
        """FORECASTER_<EXCHANGE>_URL variables pointing a subprocess at this server."""
        return {ex.url_setting: self.base_url(name) for name, ex in EXCHANGES.items()}

    # -- data and clock
    def set_candles(self, market: str | Market, candles: list[Candle]) -> None:
        """Serve `candles` as `market`'s (`bithumb:ETH-KRW@1d`); they must lie on its exchange's grid."""
        m = parse_market(market) if isinstance(market, str) else market
        off_grid = next((c for c in candles if not grid_of(m).contains(c.open_time)), None)
        if off_grid is not None:
            raise ValueError(f"{m}: a candle opens at {off_grid.open_time:%Y-%m-%dT%H:%MZ}, off {m.exchange}'s "
                             f"{m.interval} grid ({grid_of(m).describe()}); tests.helpers.candle_data.candles_for makes "
                             "candles on it")
        series = sorted(candles, key=lambda c: c.open_time)
        with self._lock:
            self._series[m] = series
            self._open_times[m] = [c.open_time for c in series]

    @property
    def now(self) -> datetime:
        with self._lock:
            return self._now or datetime.now(timezone.utc)

    @now.setter
    def now(self, value: datetime | None) -> None:
        with self._lock:
            self._now = _utc(value) if value is not None else None

    def advance(self, hours: float = 1) -> datetime:
        self.now = self.now + timedelta(hours=hours)
        return self.now

    # -- faults and observations
    def fail_next(self, kind: str, times: int = 1, path_contains: str | None = None, *, after: int = 0,
                  **opts) -> None:
        """Queue a fault for `times` requests whose path contains `path_contains`, after `after` good ones.

        opts: "429" retry_after=SECONDS (the header is sent only when given); "html" status=502|200;
        "timeout" delay=SECONDS (default `timeout_delay`); "drip" every=SECONDS (default 1): the
        whole answer, status line included, one byte at a time, so no single read waits long.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {FAULT_KINDS}")
        if times < 1 or after < 0:
            raise ValueError("times must be >= 1 and after >= 0")
        with self._lock:
            self._faults.append(_Fault(kind, times, path_contains, after, opts))

    def count(self, path_contains: str = "") -> int:
        with self._lock:
            return sum(n for path, n in self.counts.items() if path_contains in path)

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.log.clear()

    def _record(self, path: str, query: dict) -> _Fault | None:
        """Count the request and hand back the fault it should suffer, if any."""
        with self._lock:
            self.counts[path] += 1
            self.log.append((path, query))
            for fault in self._faults:
                if fault.path_contains is None or fault.path_contains in path:
                    if fault.skip:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def visible(self, market: Market) -> list[Candle]:
        """What the exchange has at `now`: closed candles plus, if its interval has begun, the open one."""
        now = self.now
        with self._lock:
            series, open_times = self._series.get(market), self._open_times.get(market)
        if series is None:
            return []
        step = grid_of(market).step
        shown = series[:bisect.bisect_right(open_times, now)]
        if shown and shown[-1].open_time + step > now:
            c = shown[-1]
            f = (now - c.open_time) / step  # share of the interval elapsed
            close = c.open + (c.close - c.open) * f
            shown[-1] = replace(c, high=max(c.open, close), low=min(c.open, close), close=close, volume=c.volume * f)
        return shown

    def markets(self) -> list[Market]:
        with self._lock:
            return list(self._series)


# ---- the three exchanges' endpoints; each route returns (status, JSON-able body) or raises _Reply

def _bithumb_public(fake: FakeExchange, exchange: str, rest: str, q: dict, bad_row: bool):
    parts = rest.split("/")  # public/candlestick/ETH_KRW/1h
    base, _, quote = parts[2].partition("_") if len(parts) == 4 else ("", "", "")
    market = Market(exchange, base, quote, "1h")
    if parts[3:] != ["1h"] or market not in fake.markets():
        raise _Reply(200, {"status": "5500", "message": "Invalid Parameter"})
    candles = _corrupt(fake.visible(market)[-fake.bithumb_window:], bad_row)
    # Bithumb's order: [ms, open, CLOSE, HIGH, LOW, volume], prices as strings.
    rows = [[_ms(c.open_time), _s(c.open), _s(c.close), _s(c.high), _s(c.low), _s(c.volume)] for c in candles]
    return 200, {"status": "0000", "data": rows}


def _v1_candles(fake: FakeExchange, exchange: str, rest: str, q: dict, bad_row: bool):
    kind = rest.removeprefix("v1/candles/")
    if kind not in V1_KINDS:
        raise _Reply(404, {"error": {"name": "404", "message": f"the test exchange serves no candles/{kind}"}})
    code = q.get("market", "")
    quote, _, base = code.partition("-")
    market = Market(exchange, base, quote, V1_KINDS[kind])
    if market not in fake.markets():
        if any((m.exchange, m.base, m.quote) == (exchange, base, quote) for m in fake.markets()):
            raise _Reply(404, {"error": {"name": "404", "message": f"the test exchange holds no {market.interval} "
                                                                   f"candles of {code}"}})
        raise _Reply(404, {"error": {"name": "404", "message": "Code not found"}})
    count = int(q.get("count", 1))
    if not 1 <= count <= 200:
        raise _Reply(400, {"error": {"name": "invalid_parameter_count", "message": "count must be 1..200"}})
    candles = fake.visible(market)
    end = len(candles)
    if "to" in q:
        try:
            to = datetime.fromisoformat(q["to"])
        except ValueError:
            raise _Reply(400, {"error": {"name": "invalid_parameter_to", "message": f"bad to {q['to']!r}"}})
        if to.tzinfo is None:  # Bithumb reads a bare `to` as KST, Upbit as UTC
            to = (to - KST if exchange == "bithumb" else to).replace(tzinfo=timezone.utc)
        end = bisect.bisect_left([c.open_time for c in candles], to)  # `to` is exclusive
    start = max(0, end - count)
    page = _corrupt(candles[start:end], bad_row)
    before = [candles[start - 1].close if start else page[0].open] + [c.close for c in page[:-1]] if page else []
    rows = [_v1_row(c, prev, code, market, fake.now) for c, prev in zip(page, before)]
    return 200, rows[::-1]  # newest first


def _v1_row(c: Candle, prev_close: float, code: str, market: Market, now: datetime) -> dict:
    step = grid_of(market).step
    row = {
        "market": code, "candle_date_time_utc": f"{c.open_time:%Y-%m-%dT%H:%M:%S}",
        "candle_date_time_kst": f"{c.open_time + KST:%Y-%m-%dT%H:%M:%S}",
        "opening_price": c.open, "high_price": c.high, "low_price": c.low, "trade_price": c.close,
        "timestamp": min(_ms(c.open_time + step) - 1000, _ms(now)),
        "candle_acc_trade_price": round(c.close * c.volume, 8), "candle_acc_trade_volume": c.volume,
    }
    if market.interval == "1d":  # day rows: the change since the day before, and no unit
        row.update(prev_closing_price=prev_close, change_price=c.close - prev_close,
                   change_rate=round((c.close - prev_close) / prev_close, 8))
    else:
        row["unit"] = int(step / timedelta(minutes=1))
    return row


def _binance_klines(fake: FakeExchange, exchange: str, rest: str, q: dict, bad_row: bool):
    symbol, interval = q.get("symbol", ""), q.get("interval")
    if interval not in BINANCE_INTERVALS:
        raise _Reply(400, {"code": -1120, "msg": "Invalid interval."})
    same_symbol = [m for m in fake.markets() if m.exchange == exchange and m.base + m.quote == symbol]
    market = next((m for m in same_symbol if m.interval == interval), None)
    if market is None:
        msg = f"the test exchange holds no {interval} klines of {symbol}" if same_symbol else "Invalid symbol."
        raise _Reply(400, {"code": -1121, "msg": msg})
    limit = int(q.get("limit", 500))
    if not 1 <= limit <= 1000:
        raise _Reply(400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."})
    candles = fake.visible(market)
    ms = [_ms(c.open_time) for c in candles]
    lo = bisect.bisect_left(ms, int(q["startTime"])) if "startTime" in q else 0
    hi = bisect.bisect_right(ms, int(q["endTime"])) if "endTime" in q else len(ms)
    page = candles[lo:hi][:limit] if "startTime" in q else candles[lo:hi][-limit:]
    step_ms = _ms(EPOCH + grid_of(market).step)
    return 200, [[_ms(c.open_time), _b(c.open), _b(c.high), _b(c.low), _b(c.close), _b(c.volume),
                  _ms(c.open_time) + step_ms - 1, _b(c.close * c.volume), 1000, _b(c.volume / 2),
                  _b(c.close * c.volume / 2), "0"] for c in _corrupt(page, bad_row)]


ROUTES = {
    ("bithumb", "public/candlestick"): _bithumb_public,
    ("bithumb", "v1/candles/"): _v1_candles,
    ("upbit", "v1/candles/"): _v1_candles,
    ("binance", "api/v3/klines"): _binance_klines,
}


def _corrupt(candles: list[Candle], bad_row: bool) -> list[Candle]:
    """For the "bad_row" fault: the middle candle gets high < low, so a client must reject the whole page."""
    if not bad_row or not candles:
        return candles
    i = len(candles) // 2
    return candles[:i] + [replace(candles[i], high=candles[i].low / 2)] + candles[i + 1:]


def _emptied(body):
    """For the "empty" fault: a well-formed answer with no candles, as exchanges give under load."""
    return {**body, "data": []} if isinstance(body, dict) else []


def _shortened(body):
    """For the "short" fault: a well-formed answer with half its candles: the newest half of a v1
    page or a Bithumb window, the oldest half of a klines page."""
    if isinstance(body, dict):
        return {**body, "data": body["data"][len(body["data"]) // 2:]}
    return body[:len(body) // 2]


def _s(x: float) -> str:  # Bithumb: KRW prices as integer strings
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def _b(x: float) -> str:  # Binance: fixed 8 decimals
    return f"{x:.8f}"


class _Handler(BaseHTTPRequestHandler):
    fake: FakeExchange

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        q = dict(parse_qsl(parts.query))
        fake = self.fake
        if parts.path.startswith("/_control/"):
            return self._control(parts.path, q)
        fault = fake._record(parts.path, q)
        if fault and fault.kind == "timeout":
            if fake._stop.wait(fault.opts.get("delay", fake.timeout_delay)):
                return
        elif fault and fault.kind == "disconnect":
            self.close_connection = True
            return
        elif fault:
            canned = _fault_reply(fault)
            if canned:
                return self._send(*canned)
        exchange, _, rest = parts.path.strip("/").partition("/")
        route = next((fn for (ex, prefix), fn in ROUTES.items() if ex == exchange and rest.startswith(prefix)), None)
        if route is None:
            return self._send(404, "text/plain", b"Not Found")
        try:
            status, body = route(fake, exchange, rest, q, bool(fault and fault.kind == "bad_row"))
        except _Reply as r:
            status, body = r.status, r.body
        except (KeyError, ValueError) as exc:
            status, body = 400, {"error": {"name": "bad_request", "message": str(exc)}}
        if fault and fault.kind == "empty" and status == 200:
            body = _emptied(body)
        elif fault and fault.kind == "short" and status == 200:
            body = _shortened(body)
        if fault and fault.kind == "drip":
            return self._drip(status, json.dumps(body).encode(), fault.opts.get("every", 1.0))
        self._send(status, "application/json", json.dumps(body).encode())

    def _drip(self, status: int, body: bytes, every: float) -> None:
        raw = (f"HTTP/1.0 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               .encode() + body)
        self.close_connection = True
        for i in range(len(raw)):
            try:
                self.wfile.write(raw[i:i + 1])
            except OSError:
                return  # the client gave up
            if self.fake._stop.wait(every):
                return

    def _control(self, path: str, q: dict) -> None:
        """For a server in another process: /_control/advance?hours=1, /_control/fail?kind=500&times=2, /_control/state."""
        fake = self.fake
        try:
            if path == "/_control/advance":
                fake.advance(float(q.get("hours", 1)))
            elif path == "/_control/fail":
                fake.fail_next(q["kind"], int(q.get("times", 1)), q.get("path_contains"), after=int(q.get("after", 0)))
        except (KeyError, ValueError) as exc:
            return self._send(400, "text/plain", f"bad control request: {exc}".encode())
        body = {"now": fake.now.isoformat(), "counts": dict(fake.counts)}
        self._send(200, "application/json", json.dumps(body).encode())

    def _send(self, status: int, ctype: str, body: bytes, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout); nothing to tell it


def _fault_reply(fault: _Fault) -> tuple | None:
    kind = fault.kind
    if kind == "500":
        return 500, "text/plain", b"Internal Server Error"
    if kind == "429":
        after = fault.opts.get("retry_after")
        return 429, "text/plain", b"Too Many Requests", ({"Retry-After": str(after)} if after is not None else {})
    if kind == "html":
        return fault.opts.get("status", 502), "text/html", HTML_502.encode()
    if kind == "bithumb_5600":
        return 200, "application/json", json.dumps({"message": "Please try again", "status": "5600"}).encode()
    if kind == "garbage":
        return 200, "application/json", b'{"status":"0000","data":[[1700000000000,"29'  # cut off mid-body
    return None  # bad_row is applied by the route


def main(argv: list[str] | None = None) -> None:
    """Serve CSV candles until interrupted; prints `FAKE_EXCHANGE_URL http://...` once listening."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", action="append", default=[], metavar="MARKET=CSV",
                    help="e.g. bithumb:ETH-KRW=tests/data/upbit_ETHKRW_1h_2023.csv.gz (repeatable); an hourly "
                         "CSV, served in MARKET's interval as tests.helpers.candle_data.candles_for makes it")
    ap.add_argument("--start", help="first open_time to load (ISO, UTC)")
    ap.add_argument("--hours", type=int, help="hours to load from --start")
    ap.add_argument("--now", help="the clock (ISO, UTC); default: follow the wall clock")
    ap.add_argument("--retime", action="store_true", help="shift each series to end at the current hour")
    ap.add_argument("--bithumb-window", type=int, default=500)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    fake = FakeExchange(now=_utc(args.now) if args.now else None, bithumb_window=args.bithumb_window, port=args.port)
    for spec in args.serve:
        text, _, path = spec.partition("=")
        market = parse_market(text)
        candles = candles_for(market, load_csv_slice(path, args.start, args.hours))
        # The open candle is the current one, on the market's own grid.
        current = grid_of(market).floor(datetime.now(timezone.utc))
        fake.set_candles(market, retime(candles, current) if args.retime else candles)
    with fake:
        print(f"FAKE_EXCHANGE_URL {fake.url}", flush=True)
        try:
            fake._stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
