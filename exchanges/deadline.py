"""A deadline for each try of an HTTP request, beside requests' timeouts, which bound each socket
read only: a server that sends a byte a second would otherwise hold a request forever.

`get_json` (exchanges/http.py) puts a TryDeadline in `current` for its thread; the session's
connections (DeadlineAdapter) arm it when a try's request has been sent, and when the try has taken
its connect + read timeout, a timer shuts its socket down: the blocked read sees the end of the
stream and the try fails, retried or reported like a dropped connection.
"""
from __future__ import annotations

import socket
import threading

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

current = threading.local()  # the TryDeadline of the get_json running in this thread, if any


class TryDeadline:
    """Shuts down the socket of the running try once it has taken `seconds` (a try is re-armed by
    the next one's request)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def arm(self, sock) -> None:
        with self._lock:
            self.expired = False  # a new try: what counts is whether the last one ran out
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.seconds, self._expire, args=(sock,))
            self._timer.daemon = True
            self._timer.start()

    def _expire(self, sock) -> None:
        self.expired = True
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the read blocked on it: it sees the end of the stream
        except OSError:
            pass  # closed already

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()


class DeadlineConnection(HTTPConnection):
    def getresponse(self, *args, **kwargs):  # the request has been sent: the try's clock starts
        deadline = getattr(current, "deadline", None)
        if deadline is not None and self.sock is not None:
            deadline.arm(self.sock)
        return super().getresponse(*args, **kwargs)


class _DeadlineHTTPSConnection(HTTPSConnection):
    getresponse = DeadlineConnection.getresponse


class _DeadlinePool(HTTPConnectionPool):
    ConnectionCls = DeadlineConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _DeadlinePool, "https": _DeadlineHTTPSPool}


def try_deadline(timeout: float | tuple[float, float]) -> float:
    """Seconds one try may take in all: its connect and read timeouts added up."""
    return sum(timeout) if isinstance(timeout, tuple) else 2 * timeout
