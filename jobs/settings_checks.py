"""Checks of settings that need more than a range: exchange URLs, and FORECASTER_* names that no
setting has (a misspelt variable is otherwise silently ignored, and its default used)."""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from urllib.parse import urlsplit

# FORECASTER_* variables read by the tests and the benches, not by the service: not misspellings.
TOOL_VARIABLES = ("FORECASTER_TEST_PG", "FORECASTER_SHARED_DATA")


def exchange_url_problem(url: str) -> str | None:
    """Why `url` cannot be an exchange's API root, or None. Checked at start: a daemon started
    with `not a url`, `ftp://...` or an empty string used to fail every ingest, every hour."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0..65535
    except ValueError as e:
        problem = f"not a URL ({e})"
    else:
        if parts.scheme not in ("http", "https"):
            problem = "not an http:// or https:// URL"
        elif not parts.hostname:
            problem = "an http(s) URL without a host"
        elif any(ch.isspace() or not ch.isprintable() for ch in url):
            problem = "a URL with white space or a control character in it"
        else:
            return None
    return f"{problem}: give the root of the exchange's API, e.g. https://api.upbit.com"


def unknown_variable_warnings(known: list[str], prefix: str, env_file: str | Path = ".env") -> list[str]:
    """One warning per FORECASTER_* name, in the environment or in `.env`, that no setting has,
    with the closest known name when one is close (difflib)."""
    names = _given_names(prefix, env_file)
    known_names = [prefix + k.upper() for k in known] + list(TOOL_VARIABLES)
    warnings = []
    for name in sorted(names):
        if name.upper() in known_names:  # pydantic-settings matches names in any case
            continue
        close = difflib.get_close_matches(name.upper(), known_names, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f" (known: see README, e.g. {prefix}MARKETS)"
        warnings.append(f"{name} is not a setting and is ignored{hint}")
    return warnings


def variables_set(prefix: str, env_file: str | Path = ".env") -> set[str]:
    """The FORECASTER_* variables given, in the environment or in `.env`, upper case (pydantic-settings
    matches names in any case)."""
    return {name.upper() for name in _given_names(prefix, env_file)}


def _given_names(prefix: str, env_file: str | Path) -> set[str]:
    names = {k for k in os.environ if k.upper().startswith(prefix)}
    return names | {k for k in _env_file_names(Path(env_file)) if k.upper().startswith(prefix)}


def _env_file_names(path: Path) -> list[str]:
    if not path.is_file():
        return []
    try:
        from dotenv import dotenv_values  # python-dotenv: pydantic-settings reads .env with it
        return list(dotenv_values(path))
    except Exception:  # an unreadable .env is pydantic-settings' to report, not a warning's
        return []
