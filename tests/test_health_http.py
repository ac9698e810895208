"""The daemon's HTTP endpoint under a burst of scrapes and under clients that connect and stall,
on loopback, bounded in count and time; and where it listens."""
from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import requests

from daemon.health_server import HealthServer
from daemon.metrics import Metrics
from daemon.state import DaemonState
from exchanges.base import parse_market
from tests.helpers.compose import compose

MARKETS = [parse_market(m) for m in ("bithumb:ETH-KRW", "upbit:ETH-KRW", "binance:ETH-USDT")]
BURST = 200
STALLED = 60


def serve() -> HealthServer:
    state = DaemonState.for_markets(MARKETS, max_lag_hours=3)
    for m in MARKETS:
        state.markets[m].newest_candle = datetime.now(timezone.utc) - timedelta(hours=1)
    state.running = True
    return HealthServer(state, Metrics(state), 0).start()


def test_a_burst_of_scrapes_is_answered_in_full_and_in_time():
    server = serve()
    url = f"http://127.0.0.1:{server.port}/metrics"

    def scrape(_):
        started = time.monotonic()
        try:
            ok = requests.get(url, timeout=3).status_code == 200
        except requests.RequestException:
            ok = False
        return ok, time.monotonic() - started
    try:
        threads_before = threading.active_count()
        barrier_started = time.monotonic()
        with ThreadPoolExecutor(BURST) as pool:  # 200 clients at once
            results = list(pool.map(scrape, range(BURST)))
        took = time.monotonic() - barrier_started
    finally:
        server.close()
    failed = sum(1 for ok, _ in results if not ok)
    slowest = max(seconds for _, seconds in results)
    assert failed == 0, f"{failed} of {BURST} scrapes failed or timed out (slowest {slowest:.1f}s)"
    # A dropped SYN is retried after a second: every scrape answered well within that means none was.
    assert slowest < 1.0 and took < 10, (slowest, took)
    assert threading.active_count() <= threads_before + 1


def test_stalled_clients_hold_no_threads_and_do_not_delay_a_scrape():
    from daemon.http_server import MAX_THREADS
    baseline = threading.active_count()
    server = serve()
    stalled = []
    try:
        for _ in range(STALLED):  # connect, send nothing
            stalled.append(socket.create_connection(("127.0.0.1", server.port), timeout=2))
        time.sleep(0.5)
        # The serving thread, the watcher and the handler pool; nothing per stalled client.
        assert threading.active_count() <= baseline + MAX_THREADS + 2, "threads grow with stalled clients"
        started = time.monotonic()
        health = requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        assert health.status_code == 200 and time.monotonic() - started < 1.0
    finally:
        for s in stalled:
            s.close()
        server.close()


def test_silent_and_trickling_clients_are_cut_off_at_the_deadline():
    from daemon.http_server import CONNECTION_DEADLINE_SECONDS
    server = serve()
    limit = CONNECTION_DEADLINE_SECONDS + 2

    def held_for(trickle: bool) -> float:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=2)
        s.settimeout(0.5)
        started = time.monotonic()
        try:
            while time.monotonic() - started < limit:
                try:
                    if trickle:
                        s.sendall(b"G")  # a byte now and then: a per-read timeout alone never fires
                    if s.recv(1) == b"":
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
            return time.monotonic() - started
        finally:
            s.close()
    try:
        with ThreadPoolExecutor(2) as pool:
            silent, trickling = pool.map(held_for, (False, True))
    finally:
        server.close()
    assert silent < limit and trickling < limit, (silent, trickling)


def test_it_listens_on_loopback_unless_told_otherwise_and_compose_opens_it_in_the_container():
    server = serve()
    try:
        assert server.host == "127.0.0.1"
    finally:
        server.close()
    worker = compose()["services"]["worker"]
    assert worker["environment"]["FORECASTER_HTTP_HOST"] == "0.0.0.0"
    assert "127.0.0.1" in " ".join(worker["healthcheck"]["test"])  # the check runs inside the container


def test_clients_trickling_their_headers_hold_no_handler_and_do_not_delay_a_probe():
    """16 clients sending a header byte every 0.2 s (issue 21): a handler thread takes a connection
    only once its whole request head is in, so all 8 stay free for the probes."""
    from daemon.http_server import MAX_THREADS
    server = serve()
    stop = threading.Event()

    def trickle():
        with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
            for byte in b"GET /healthz HTTP/1.0\r\nX-Slow: " + b"a" * 200:
                if stop.wait(0.2):
                    return
                try:
                    s.sendall(bytes([byte]))
                except OSError:
                    return
    tricklers = [threading.Thread(target=trickle, daemon=True) for _ in range(2 * MAX_THREADS)]
    try:
        for t in tricklers:
            t.start()
        time.sleep(1)  # every trickling client has sent part of its head
        for _ in range(5):
            health = requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=1.5)
            assert health.status_code == 200 and health.json()["status"] == "ok"
    finally:
        stop.set()
        for t in tricklers:
            t.join(3)
        server.close()
