"""Secrets never printed: the one place that masks them in URLs and in any text the service shows.

A database password can be given two ways that libpq and SQLAlchemy both accept: in the userinfo
(`postgresql+psycopg://svc:PW@host/db`) or as a query parameter (`...?password=PW`, and likewise
`sslpassword`, or `passfile` naming a file that holds one). SQLAlchemy's `hide_password` masks the
first form only, so every URL and every line the service prints (log lines, `status`, `error:`
lines, `job_runs.message`, the HTTP endpoints) goes through `mask_secrets` here.

Two nets, because text from a driver or an exchange may quote a URL in ways no pattern foresees:
1. structure: in anything shaped like a URL, the userinfo password and the value of every query
   parameter whose name says it is secret are replaced by `***`;
2. the known secrets themselves: the passwords of the URLs in the settings are remembered at start
   (`remember_secrets_of`) and every occurrence of them (as given or percent-encoded) is masked,
   wherever it appears. Secrets shorter than MIN_REMEMBERED chars are not remembered: masking
   every `a` in a log would hide the log, and the structural net still covers them in URLs.
"""
from __future__ import annotations

import re
import threading
from urllib.parse import quote, unquote

MASK = "***"
MIN_REMEMBERED = 4
# Query parameter names whose value is a secret or says where one is (libpq's password, sslpassword
# and passfile; tokens and keys an exchange URL might carry).
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|api[_-]?key|apikey|signature|credential|auth", re.I)
# Anything shaped like a URL: scheme://, up to white space or a quote.
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://[^\s'"<>`]*""")
# key=value pairs of a libpq connection string ("host=x password=y") or of a query string.
_PAIR = re.compile(r"""(?P<key>[A-Za-z_][A-Za-z0-9_\-]*)(?P<eq>\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^\s&;,'"]+)""")

_remembered: set[str] = set()
_lock = threading.Lock()


def mask_url(url: str) -> str:
    """The URL with its userinfo password and secret query parameters masked."""
    return _mask_one_url(url)


def mask_secrets(text: str) -> str:
    """`text` with every secret masked: passwords and secret parameters of URLs and of libpq
    key=value strings, and every remembered secret wherever it appears."""
    if not text:
        return text
    text = _URL.sub(lambda m: _mask_one_url(m.group(0)), text)
    text = _PAIR.sub(_mask_pair, text)
    with _lock:
        known = sorted(_remembered, key=len, reverse=True)  # longest first: one may contain another
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def remember_secrets_of(url: str) -> None:
    """Remember the secrets of `url` (its password and secret parameters, as given and
    percent-decoded and -encoded) so that mask_secrets hides them in any text."""
    found = []
    scheme, sep, rest = url.partition("://")
    if sep:
        authority = _authority(rest)
        if "@" in authority:
            userinfo = authority.rsplit("@", 1)[0]
            if ":" in userinfo:
                found.append(userinfo.split(":", 1)[1])
        query = rest.partition("?")[2].partition("#")[0]
        for pair in query.split("&"):
            key, eq, value = pair.partition("=")
            if eq and _SECRET_PARAM.search(unquote(key)):
                found.append(value)
    with _lock:
        for secret in found:
            for form in (secret, unquote(secret), quote(unquote(secret), safe="")):
                if len(form) >= MIN_REMEMBERED:
                    _remembered.add(form)


def forget_secrets() -> None:
    """Forget what remember_secrets_of learnt (tests that change settings in one process)."""
    with _lock:
        _remembered.clear()


def _authority(rest: str) -> str:
    """The part of a URL after `scheme://` up to its path or query: the host and port, after the
    userinfo if any. A password may hold `/` or `:`; SQLAlchemy reads everything up to the last `@`
    before the query as userinfo, so the password is masked up to there too."""
    before_query = re.split(r"[?#]", rest, maxsplit=1)[0]
    at = before_query.rfind("@")
    return before_query[:at + 1] + before_query[at + 1:].split("/", 1)[0]


def _mask_one_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority = _authority(rest)
    tail = rest[len(authority):]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}:{MASK}@{host}" if colon else authority
    path, qmark, query = tail.partition("?")
    if qmark:
        query, hash_, fragment = query.partition("#")
        query = "&".join(_mask_query_pair(p) for p in query.split("&")) + hash_ + fragment
    return f"{scheme}{sep}{authority}{path}{qmark}{query}"


def _mask_query_pair(pair: str) -> str:
    key, eq, _value = pair.partition("=")
    return f"{key}={MASK}" if eq and _SECRET_PARAM.search(unquote(key)) else pair


def _mask_pair(m: re.Match) -> str:
    if _SECRET_PARAM.search(m["key"]) and m["value"] != MASK:
        return f"{m['key']}{m['eq']}{MASK}"
    return m.group(0)
