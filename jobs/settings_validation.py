"""The checks of each setting's value, one validator per setting (or group of alike settings), as
the base class of `Settings` (jobs/settings.py): each raises ValueError with the reason, which
load_settings turns into one line naming the variable."""
from __future__ import annotations

import ipaddress
import math
import re
from datetime import datetime, timezone

from pydantic import ValidationInfo, field_validator
from pydantic_settings import BaseSettings

from db.redact import mask_url
from exchanges.base import MarketError, parse_market
from exchanges.registry import EXCHANGES

ENV_PREFIX = "FORECASTER_"
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Upper bounds: beyond them a value is a typo, and a date computed from it overflows (OverflowError
# from timedelta) or a request waits forever. 10 years is more history than any of the exchanges has.
MAX_BACKFILL_DAYS = 3650
MAX_TRAIN_STEPS = 24 * 3650  # 10 years of 1h candles
MAX_HTTP_TIMEOUT_SECONDS = 600.0
# Below this no exchange answers, even on loopback, so every request would fail: a typo (ms for s).
MIN_HTTP_TIMEOUT_SECONDS = 0.1
MAX_MISFIRE_GRACE_SECONDS = 7 * 24 * 3600


class SettingChecks(BaseSettings):
    """Validators only; the fields are declared on `Settings` (hence check_fields=False)."""

    @field_validator("database_url", check_fields=False)
    @classmethod
    def _url(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        try:
            url = make_url(v)
        except Exception:
            raise ValueError("not a SQLAlchemy URL (e.g. sqlite:///forecaster.db or "
                             "postgresql+psycopg://user@host:5432/db)") from None
        backend = url.get_backend_name()
        # libpq's spellings: SQLAlchemy knows no `postgres://`, and reads plain `postgresql://` as
        # psycopg2, which is not installed: the driver this project ships is psycopg 3.
        if backend == "postgres" or url.drivername == "postgresql":
            raise ValueError(f"write {_psycopg(v)} ({url.drivername}:// is libpq's spelling; SQLAlchemy "
                             "needs postgresql+psycopg://)")
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
        return v

    @field_validator("markets", check_fields=False)
    @classmethod
    def _markets(cls, v: str) -> str:
        # Spaces around the commas are the list's layout; a newline inside an item is not (parse_market).
        parts = [p.strip(" \t") for p in v.split(",") if p.strip(" \t")]
        if not parts:
            raise ValueError("no market given")
        seen: dict[str, str] = {}
        for p in parts:
            try:
                key = str(parse_market(p))
            except MarketError as e:
                raise ValueError(str(e)) from None
            if key in seen:  # served twice, it would be ingested and trained twice
                raise ValueError(f"{key} is listed twice (as {seen[key]!r} and {p!r})")
            seen[key] = p
        return ",".join(parts)

    @field_validator("*", check_fields=False)
    @classmethod
    def _exchange_url(cls, v, info: ValidationInfo):
        # every exchange's URL field (one per registry row, jobs/settings.py)
        if info.field_name not in {ex.url_field for ex in EXCHANGES.values()}:
            return v
        from jobs.settings_checks import exchange_url_problem
        problem = exchange_url_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("device", check_fields=False)
    @classmethod
    def _device(cls, v: str) -> str:
        if not _DEVICE_RE.match(v.strip()):
            raise ValueError(f"{v!r} is not one of auto, cpu, cuda, cuda:N, mps")
        return v.strip()

    @field_validator("horizon", check_fields=False)
    @classmethod
    def _horizon(cls, v: int) -> int:
        if not 1 <= v <= 168:
            raise ValueError(f"{v} is outside 1..168 steps")
        return v

    @field_validator("log_level", check_fields=False)
    @classmethod
    def _log_level(cls, v: str) -> str:
        if v.upper() not in _LOG_LEVELS:
            raise ValueError(f"{v!r} is not one of {', '.join(_LOG_LEVELS)}")
        return v.upper()

    @field_validator("ingest_cron", "retrain_cron", check_fields=False)
    @classmethod
    def _cron(cls, v: str) -> str:
        from jobs.cron import cron_trigger
        trigger = cron_trigger(v)  # raises ValueError with the reason
        if trigger.get_next_fire_time(None, datetime.now(timezone.utc)) is None:
            raise ValueError(f"{v!r} never fires (no such date)")
        return v

    @field_validator("http_port", check_fields=False)
    @classmethod
    def _port(cls, v: int) -> int:
        if not 0 <= v <= 65535:
            raise ValueError(f"{v} is not a TCP port (0 turns the HTTP endpoint off)")
        return v

    @field_validator("ingest_delay_seconds", check_fields=False)
    @classmethod
    def _delay(cls, v: int) -> int:
        if not 0 <= v <= 59:
            raise ValueError(f"{v} is outside 0..59 seconds")
        return v

    @field_validator("train_workers", mode="before", check_fields=False)
    @classmethod
    def _train_workers(cls, v):
        text = str(v).strip().lower()
        if text == "auto":
            return "auto"
        if not text.isdigit() or not 1 <= int(text) <= 64:
            raise ValueError(f"{v!r} is not auto or a number of trainings 1..64")
        return int(text)

    @field_validator("lock_lease_seconds", check_fields=False)
    @classmethod
    def _lease(cls, v: float) -> float:
        if not 3 <= v <= 3600:
            raise ValueError(f"{v:g} s is outside 3..3600 s")
        return v

    @field_validator("ingest_workers", check_fields=False)
    @classmethod
    def _ingest_workers(cls, v: int) -> int:
        if not 1 <= v <= 64:
            raise ValueError(f"{v} is outside 1..64")
        return v

    @field_validator("http_host", check_fields=False)
    @classmethod
    def _host(cls, v: str) -> str:
        v = v.strip()
        if v == "localhost":
            return v
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address (127.0.0.1, 0.0.0.0, ::1, ...)") from None
        return v

    @field_validator("http_timeout_seconds", "healthz_max_lag_steps", check_fields=False)
    @classmethod
    def _positive(cls, v: float) -> float:
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(f"{v} is not a positive finite number")
        return v

    @field_validator("http_timeout_seconds", check_fields=False)
    @classmethod
    def _timeout(cls, v: float) -> float:
        if v < MIN_HTTP_TIMEOUT_SECONDS:
            raise ValueError(f"{v:g} s is less than {MIN_HTTP_TIMEOUT_SECONDS:g} s: no exchange answers that fast "
                             "(the value is in seconds)")
        if v > MAX_HTTP_TIMEOUT_SECONDS:
            raise ValueError(f"{v:g} s is more than {MAX_HTTP_TIMEOUT_SECONDS:g} s: an hourly job cannot wait that long")
        return v

    @field_validator("keep_models", check_fields=False)
    @classmethod
    def _non_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"{v} is negative")
        return v

    @field_validator("keep_forecast_days", check_fields=False)
    @classmethod
    def _keep_forecasts(cls, v: int) -> int:
        if not 0 <= v <= 36500:
            raise ValueError(f"{v} is outside 0..36500 days (0 keeps every forecast)")
        return v

    @field_validator("backfill_days", check_fields=False)
    @classmethod
    def _backfill(cls, v: int) -> int:
        if not 0 <= v <= MAX_BACKFILL_DAYS:
            raise ValueError(f"{v} is outside 0..{MAX_BACKFILL_DAYS} days")
        return v

    @field_validator("train_steps", check_fields=False)
    @classmethod
    def _train_steps(cls, v: int) -> int:
        if not 1 <= v <= MAX_TRAIN_STEPS:
            raise ValueError(f"{v} is outside 1..{MAX_TRAIN_STEPS} steps")
        return v

    @field_validator("misfire_grace_seconds", check_fields=False)
    @classmethod
    def _grace(cls, v: int) -> int:
        if not 0 <= v <= MAX_MISFIRE_GRACE_SECONDS:
            raise ValueError(f"{v} is outside 0..{MAX_MISFIRE_GRACE_SECONDS} seconds (0: however late)")
        return v

    @field_validator("model_overrides", check_fields=False)
    @classmethod
    def _model_overrides(cls, v: str) -> str:
        from forecaster.config import ModelConfig
        from jobs.model_overrides import parse_model_overrides
        overrides = parse_model_overrides(v)  # ValueError naming the field
        try:
            ModelConfig.from_dict(overrides)
        except (TypeError, ValueError) as e:
            raise ValueError(str(e)) from None
        return v if overrides else ""


def _psycopg(url: str) -> str:
    """The URL with psycopg 3's scheme and the password hidden, for the hint."""
    return mask_url("postgresql+psycopg://" + url.split("://", 1)[1])

