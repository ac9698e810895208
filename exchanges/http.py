"""One HTTP session for all exchange calls, and `get_json`, which turns every failure into one clear line.

Retries live in the session (urllib3 `Retry`), so every client gets the same policy: bounded retries
with exponential backoff on 429/5xx, dropped connections and read timeouts, honouring Retry-After.
`get_json` never puts the URL's query string or a library's exception text into its message: both
can carry the full URL, and a URL may one day carry credentials.

The timeouts that requests takes bound each socket read, so a server that sends a byte every second
would hold a request forever. Each try of a `get_json` therefore also has a deadline (connect + read
timeout, from the moment its request is sent): a watchdog shuts the try's socket down when it passes,
and the request fails with that said (exchanges/deadline.py). Every try gets it, so a request takes at most
tries x (connect + read) seconds plus the backoff between them.
"""
from __future__ import annotations

import json
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from .base import ExchangeError
from .deadline import DeadlineAdapter, TryDeadline, current, try_deadline

RETRY_STATUSES = (429, 500, 502, 503, 504)
# A server may ask for an hour of silence; an hourly job cannot wait that long, so honour it up to a cap.
RETRY_AFTER_CAP_S = 60.0
USER_AGENT = "forecaster/0.1 (+candles)"


class _CappedRetry(Retry):
    def get_retry_after(self, response) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, RETRY_AFTER_CAP_S)


def make_session(retries: int = 3, backoff: float = 0.5, *, backoff_max: float = 30.0) -> requests.Session:
    """A session that retries GETs `retries` times: waits 0, 2*backoff, 4*backoff... (capped at backoff_max)."""
    retry = _CappedRetry(
        total=retries,
        backoff_factor=backoff,
        backoff_max=backoff_max,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        # Hand back the last bad response instead of raising, so the error can quote its status and body.
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = DeadlineAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


def get_json(
    session: requests.Session,
    url: str,
    params: dict[str, Any] | None,
    *,
    exchange: str,
    endpoint: str,
    timeout: float | tuple[float, float] = (5, 20),
) -> Any:
    """GET `url` and return the parsed JSON body, or raise ExchangeError("<exchange> <endpoint>: <problem>")."""
    label = f"{exchange} {endpoint}"
    tries = _retries(session, url) + 1
    deadline = current.deadline = TryDeadline(try_deadline(timeout))
    try:
        resp = session.get(url, params=params, timeout=timeout)
    except requests.RequestException as exc:
        if deadline.expired:
            raise ExchangeError(f"{label}: {_too_slow(deadline, tries)}") from None
        raise ExchangeError(f"{label}: {_describe_request_failure(exc, tries, timeout)}") from None
    finally:
        deadline.cancel()
        current.deadline = None
    if deadline.expired:  # a body cut short may still have parsed as something
        raise ExchangeError(f"{label}: {_too_slow(deadline, tries)}")
    if not resp.ok:
        after = f" after {tries} tries" if resp.status_code in RETRY_STATUSES else ""
        detail = _json_error(_loads(resp.content)) or f"body {_excerpt(resp.text)}"
        raise ExchangeError(f"{label}: HTTP {resp.status_code} {resp.reason or ''}".rstrip() + f"{after}: {detail}")
    body = _loads(resp.content)
    if body is _NOT_JSON:
        ctype = resp.headers.get("Content-Type", "no content type")
        raise ExchangeError(f"{label}: answered HTTP {resp.status_code} but not JSON ({ctype}): {_excerpt(resp.text)}")
    problem = _json_error(body)
    if problem:
        raise ExchangeError(f"{label}: {problem}")
    return body


_NOT_JSON = object()


def _loads(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:  # also UnicodeDecodeError
        return _NOT_JSON


def _json_error(body: Any) -> str | None:
    """The error the exchange states in a JSON body, or None. Knows the three exchanges' shapes."""
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if isinstance(err, dict):  # Upbit: {"error": {"name": ..., "message": ...}}
        return f"error {err.get('name', '?')}: {_one_line(err.get('message', ''))}"
    if err:
        return f"error: {_one_line(err)}"
    if "code" in body and "msg" in body:  # Binance: {"code": -1121, "msg": "Invalid symbol."}
        return f"error {body['code']}: {_one_line(body['msg'])}"
    status = body.get("status")
    if status is not None and str(status) != "0000":  # Bithumb: {"status": "5600", "message": ...}
        return f"status {status}: {_one_line(body.get('message', '(no message)'))}"
    return None


def _too_slow(deadline: TryDeadline, tries: int) -> str:
    return (f"no complete answer within {deadline.seconds:g} s (the deadline of each of up to {tries} tries): "
            "the server sends too slowly")


def _describe_request_failure(exc: requests.RequestException, tries: int, timeout) -> str:
    reason = exc
    # requests wraps urllib3's MaxRetryError, whose `reason` is the last underlying failure.
    inner = exc.args[0] if exc.args else None
    if getattr(inner, "reason", None) is not None:
        reason = inner.reason
    if isinstance(reason, (requests.Timeout, ReadTimeoutError)) or (
        isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError)
    ):
        limits = f"connect {timeout[0]} s, read {timeout[1]} s" if isinstance(timeout, tuple) else f"{timeout} s"
        return f"timed out after {tries} tries ({limits})"
    if isinstance(reason, NewConnectionError) or isinstance(exc, requests.ConnectionError):
        return f"could not connect or connection dropped after {tries} tries ({type(reason).__name__})"
    return f"request failed ({type(reason).__name__})"


def _retries(session: requests.Session, url: str) -> int:
    try:
        retry = session.get_adapter(url).max_retries
    except requests.exceptions.InvalidSchema:
        return 0
    return int(retry.total or 0) if isinstance(retry, Retry) else 0


def _excerpt(text: str, limit: int = 80) -> str:
    flat = _one_line(text)
    return repr(flat[:limit] + ("..." if len(flat) > limit else ""))


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


class ApiClient:
    """What every exchange client holds: where the API is, the HTTP session, how long to wait, and
    how far and how gently to page. Subclasses set `default_name` and `default_pause`."""

    default_name = ""
    default_pause = 0.1
    max_pages_default = 1000

    def __init__(self, base_url: str, session: requests.Session, name: str | None = None, *,
                 timeout: float | tuple[float, float] = (5, 20), max_pages: int | None = None,
                 pause: float | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.name = name or self.default_name
        self.timeout = timeout
        self.max_pages = self.max_pages_default if max_pages is None else max_pages
        self.pause = self.default_pause if pause is None else pause

    def get(self, path: str, params: dict | None, *, endpoint: str | None = None) -> Any:
        """GET `path` as JSON, or ExchangeError naming this exchange and `endpoint` (default: the path)."""
        return get_json(self.session, self.base_url + path, params, exchange=self.name,
                        endpoint=endpoint or path, timeout=self.timeout)
