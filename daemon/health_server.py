"""The daemon's HTTP endpoints on a background thread: `/healthz` (daemon/state.py's health rule),
`/metrics` (daemon/metrics.py) and, beside them, the pages of reports/web."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from daemon.http_server import BoundedHTTPServer
from daemon.metrics import Metrics
from daemon.state import DaemonState
from jobs.errors import JobError


class HealthServer:
    """`/healthz` and `/metrics` on a background thread; `port=0` in settings means no server at all.
    It listens on 127.0.0.1 unless told otherwise (FORECASTER_HTTP_HOST): metrics are not for the
    whole network. Bursts and stalled clients are bounded by daemon/http_server.py."""

    def __init__(self, state: DaemonState, metrics: Metrics, port: int, host: str = "127.0.0.1",
                 pages=None) -> None:
        """`pages`: reports.web.pages.Pages, serving `/` and `/market/<key>` beside the endpoints."""
        handler = type("Handler", (_Handler,), {"state": state, "metrics": metrics, "pages": pages})
        try:
            self._httpd = BoundedHTTPServer((host, port), handler)
        except OSError as e:
            raise JobError(f"FORECASTER_HTTP_HOST {host} / FORECASTER_HTTP_PORT {port}: cannot listen: "
                           f"{e.strerror or e}") from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="health-http", daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    @property
    def host(self) -> str:
        return self._httpd.server_address[0]

    def close(self) -> None:
        self._httpd.close()
        if self._thread.ident is not None:  # started
            self._thread.join(2)


class _Handler(BaseHTTPRequestHandler):
    state: DaemonState
    metrics: Metrics
    pages = None

    def log_message(self, *args) -> None:  # scrapes every few seconds would flood the log
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            healthy, body = self.state.health()
            self._send(200 if healthy else 503, "application/json", json.dumps(body).encode())
        elif path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, self.metrics.render())
        elif self.pages is not None and (page := self.pages.answer(self.path)) is not None:
            self._send(page.status, page.content_type, page.body)
        else:
            self._send(404, "text/plain", b"not found: try /, /healthz or /metrics\n")

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
