"""A small HTTP server for the daemon's own endpoints that a burst or stalled clients cannot overrun.

`http.server.ThreadingHTTPServer` listens with a backlog of 5 (a burst of scrapes gets its
connections dropped and retried seconds later), starts one thread per connection without limit,
and waits forever for a client that connects and sends nothing (350 such clients held 353 threads).
Here:
- the listen backlog is LISTEN_BACKLOG, so a burst waits in the kernel's queue, not in SYN retries;
- a connection gets a handler thread only once its whole request head (up to the blank line) has
  arrived: until then the watcher reads what it sends into a buffer (MAX_HEAD bytes at most), and
  it costs a file descriptor, not a thread, however slowly it trickles; at most MAX_OPEN
  connections are open, and the oldest waiting one is dropped to admit a new one;
- a new connection wakes the watcher at once (a socketpair in its selector), so no request waits
  for the selector's timeout;
- MAX_THREADS handler threads serve requests, one request per connection (HTTP/1.0), each for at
  most HANDLER_SECONDS (to make and write the answer: a client that does not read is cut off);
- every connection is cut off CONNECTION_DEADLINE_SECONDS after it was accepted, however slowly it
  sends.
"""
from __future__ import annotations

import io
import logging
import queue
import selectors
import socket
import threading
import time
from http.server import HTTPServer

log = logging.getLogger("forecaster.daemon")
LISTEN_BACKLOG = 256
MAX_OPEN = 512
MAX_THREADS = 8
CONNECTION_DEADLINE_SECONDS = 10.0
HANDLER_SECONDS = 5.0  # a page reads the database: its first view took up to 1.3 s on a loaded machine
MAX_HEAD = 16 * 1024
_WATCH_SECONDS = 0.25


class _HeadRead:
    """Mixed into the handler class: the request head was read by the watcher already."""

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BytesIO(self.server.take_head(self.request))


class BoundedHTTPServer(HTTPServer):
    request_queue_size = LISTEN_BACKLOG  # socketserver passes it to listen()

    def __init__(self, address, handler, *, max_threads: int = MAX_THREADS, max_open: int = MAX_OPEN,
                 deadline_seconds: float = CONNECTION_DEADLINE_SECONDS) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, type(handler.__name__, (_HeadRead, handler), {}))
        self._heads: dict[socket.socket, bytes] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._max_open, self._deadline_seconds = max_open, deadline_seconds
        self._closing = threading.Event()
        self._serving = threading.Event()
        # Who owns a connection: the watcher while it waits for its request, then one handler.
        self._arrived: queue.SimpleQueue = queue.SimpleQueue()  # accepted: (socket, address, deadline)
        self._ready: queue.SimpleQueue = queue.SimpleQueue()  # request started: for a handler
        self._served: dict[socket.socket, float] = {}  # being served -> deadline
        self._served_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._watch, name="health-http-watch", daemon=True)]
        self._threads += [threading.Thread(target=self._work, name=f"health-http-{i}", daemon=True)
                          for i in range(max_threads)]
        for t in self._threads:
            t.start()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._serving.set()
        super().serve_forever(poll_interval)

    def process_request(self, request, client_address) -> None:
        """On the accept loop: hand the connection to the watcher; never blocks."""
        request.settimeout(self._deadline_seconds)  # no single read outlives the deadline either
        self._arrived.put((request, client_address, time.monotonic() + self._deadline_seconds))
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full of wake-ups already, or closing
            pass

    def take_head(self, request) -> bytes:
        with self._served_lock:
            return self._heads.pop(request, b"")

    def _watch(self) -> None:
        """Wait until each connection has sent something, then queue it for a handler; close
        connections that wait past their deadline (the oldest first when too many wait); cut off
        connections being served past theirs."""
        waiting = selectors.DefaultSelector()
        waiting.register(self._wake_r, selectors.EVENT_READ)
        deadlines: dict[socket.socket, float] = {}  # waiting connections, oldest first
        buffers: dict[socket.socket, bytearray] = {}  # what each has sent of its head so far
        while not self._closing.is_set():
            while not self._arrived.empty():
                request, address, deadline = self._arrived.get()
                waiting.register(request, selectors.EVENT_READ, address)
                deadlines[request] = deadline
                if len(deadlines) > self._max_open:
                    oldest = next(iter(deadlines))
                    self._drop(waiting, deadlines, oldest)
                    buffers.pop(oldest, None)
            for key, _ in waiting.select(_WATCH_SECONDS):
                if key.fileobj is self._wake_r:
                    self._drain_wakeups()
                    continue
                request = key.fileobj
                head = self._read_head(request, buffers)
                if head is None:
                    continue  # more to come
                waiting.unregister(request)
                deadline = deadlines.pop(request)
                buffers.pop(request, None)
                if not head:  # closed before a whole head, or sent too much
                    self.shutdown_request(request)
                    continue
                with self._served_lock:
                    self._served[request] = min(deadline, time.monotonic() + HANDLER_SECONDS)
                    self._heads[request] = head
                self._ready.put((request, key.data))
            now = time.monotonic()
            for request in [r for r, deadline in deadlines.items() if deadline < now]:
                self._drop(waiting, deadlines, request)
                buffers.pop(request, None)
            with self._served_lock:
                late = [r for r, deadline in self._served.items() if deadline < now]
            for request in late:
                try:
                    request.shutdown(socket.SHUT_RDWR)  # its handler's blocked read returns at once
                except OSError:
                    pass
        for request in list(deadlines):
            self._drop(waiting, deadlines, request)
        waiting.close()

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:  # nothing left
            pass

    @staticmethod
    def _read_head(request, buffers: dict) -> bytes | None:
        """What a readable connection sent, added to its buffer: the head once it is whole, None
        while it is not, b"" when the client closed first or sent more than MAX_HEAD."""
        try:
            chunk = request.recv(4096, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""
        if not chunk:
            return b""
        buffer = buffers.setdefault(request, bytearray())
        buffer += chunk
        if b"\r\n\r\n" in buffer or b"\n\n" in buffer:
            return bytes(buffer)
        return None if len(buffer) <= MAX_HEAD else b""

    def _drop(self, waiting, deadlines: dict, request) -> None:
        waiting.unregister(request)
        del deadlines[request]
        self.shutdown_request(request)

    def _work(self) -> None:
        while True:
            request, address = self._ready.get()
            if request is None:
                return
            try:
                self.finish_request(request, address)
            except OSError:
                pass  # the client went away or was cut off at its deadline
            except Exception:
                self.handle_error(request, address)
            finally:
                with self._served_lock:
                    self._served.pop(request, None)
                self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        """A bug in a handler: one line (socketserver would print a traceback to stderr)."""
        import sys
        exc = sys.exc_info()[1]
        log.error("http: answering %s failed: %s: %s", client_address[0], type(exc).__name__, exc)
        log.debug("http handler traceback", exc_info=True)

    def close(self) -> None:
        self._closing.set()
        try:
            self._wake_w.send(b"\0")  # the watcher sees it is closing now
        except OSError:
            pass
        if self._serving.is_set():
            self.shutdown()  # returns once serve_forever has
        self.server_close()
        for _ in self._threads[1:]:
            self._ready.put((None, None))
        self._wake_w.close()
