"""Typed settings from the environment and `.env` (prefix FORECASTER_), validated at start."""
from __future__ import annotations

import ipaddress
import math
import re
from datetime import datetime, timezone

from typing import Literal

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.market import Market, MarketError
from db.redact import mask_secrets, mask_url, remember_secrets_of
from exchanges.base import parse_market
from exchanges.registry import DEFAULT_URLS

ENV_PREFIX = "FORECASTER_"
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Upper bounds: beyond them a value is a typo, and a date computed from it overflows (OverflowError
# from timedelta) or a request waits forever. 10 years is more history than any of the exchanges has.
MAX_BACKFILL_DAYS = 3650
MAX_TRAIN_HOURS = 24 * 3650
MAX_HTTP_TIMEOUT_SECONDS = 600.0
# Below this no exchange answers, even on loopback, so every request would fail: a typo (ms for s).
MIN_HTTP_TIMEOUT_SECONDS = 0.1
MAX_MISFIRE_GRACE_SECONDS = 7 * 24 * 3600


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore",
                                      validate_default=True)

    database_url: str = "sqlite:///forecaster.db"
    markets: str = "bithumb:ETH-KRW"
    device: str = "auto"
    horizon: int = 24
    bithumb_url: str = DEFAULT_URLS["bithumb"]
    upbit_url: str = DEFAULT_URLS["upbit"]
    binance_url: str = DEFAULT_URLS["binance"]
    log_level: str = "INFO"
    ingest_cron: str = "0 * * * *"
    ingest_delay_seconds: int = 10        # the exchange needs a few seconds to close the hour
    retrain_cron: str = "30 0 * * *"
    http_port: int = 9108
    http_host: str = "127.0.0.1"          # 0.0.0.0 only where a container's port mapping needs it
    http_timeout_seconds: float = 20.0
    backfill_days: int = 730              # two years: the volatility model reads that far back
    train_hours: int = 4320               # the training window: 180 days
    keep_models: int = 5                  # weights kept beside the promoted model, per market
    keep_forecast_days: int = 0           # live forecasts older than this are deleted daily; 0 keeps all
    healthz_max_lag_hours: float = 3.0    # /healthz turns 503 when the newest candle is older
    misfire_grace_seconds: int = 600
    # Trainings at once per daemon: "auto" (1 on a GPU; on a CPU the measured best, see
    # jobs/runtime/training.py) or a number; the rest wait, stalest model first.
    train_workers: Literal["auto"] | int = "auto"
    ingest_workers: int = 4               # ingest + forecast of markets at once, beside the trainings
    lock_lease_seconds: float = 60.0      # Postgres: a frozen daemon's job locks pass on after this
    # JSON object of ModelConfig fields to override, e.g. {"hidden_size": 8, "max_epochs": 2}: a
    # smaller model for tests or slow machines. The horizon comes from FORECASTER_HORIZON.
    model_overrides: str = ""

    @field_validator("database_url")
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

    @field_validator("markets")
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

    @field_validator("bithumb_url", "upbit_url", "binance_url")
    @classmethod
    def _exchange_url(cls, v: str) -> str:
        from jobs.settings_checks import exchange_url_problem
        problem = exchange_url_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not _DEVICE_RE.match(v.strip()):
            raise ValueError(f"{v!r} is not one of auto, cpu, cuda, cuda:N, mps")
        return v.strip()

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, v: int) -> int:
        if not 1 <= v <= 168:
            raise ValueError(f"{v} is outside 1..168 hours")
        return v

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        if v.upper() not in _LOG_LEVELS:
            raise ValueError(f"{v!r} is not one of {', '.join(_LOG_LEVELS)}")
        return v.upper()

    @field_validator("ingest_cron", "retrain_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from jobs.runtime.schedules import cron_trigger
        trigger = cron_trigger(v)  # raises ValueError with the reason
        if trigger.get_next_fire_time(None, datetime.now(timezone.utc)) is None:
            raise ValueError(f"{v!r} never fires (no such date)")
        return v

    @field_validator("http_port")
    @classmethod
    def _port(cls, v: int) -> int:
        if not 0 <= v <= 65535:
            raise ValueError(f"{v} is not a TCP port (0 turns the HTTP endpoint off)")
        return v

    @field_validator("ingest_delay_seconds")
    @classmethod
    def _delay(cls, v: int) -> int:
        if not 0 <= v <= 59:
            raise ValueError(f"{v} is outside 0..59 seconds")
        return v

    @field_validator("train_workers", mode="before")
    @classmethod
    def _train_workers(cls, v):
        text = str(v).strip().lower()
        if text == "auto":
            return "auto"
        if not text.isdigit() or not 1 <= int(text) <= 64:
            raise ValueError(f"{v!r} is not auto or a number of trainings 1..64")
        return int(text)

    @field_validator("lock_lease_seconds")
    @classmethod
    def _lease(cls, v: float) -> float:
        if not 3 <= v <= 3600:
            raise ValueError(f"{v:g} s is outside 3..3600 s")
        return v

    @field_validator("ingest_workers")
    @classmethod
    def _ingest_workers(cls, v: int) -> int:
        if not 1 <= v <= 64:
            raise ValueError(f"{v} is outside 1..64")
        return v

    @field_validator("http_host")
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

    @field_validator("http_timeout_seconds", "healthz_max_lag_hours")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(f"{v} is not a positive finite number")
        return v

    @field_validator("http_timeout_seconds")
    @classmethod
    def _timeout(cls, v: float) -> float:
        if v < MIN_HTTP_TIMEOUT_SECONDS:
            raise ValueError(f"{v:g} s is less than {MIN_HTTP_TIMEOUT_SECONDS:g} s: no exchange answers that fast "
                             "(the value is in seconds)")
        if v > MAX_HTTP_TIMEOUT_SECONDS:
            raise ValueError(f"{v:g} s is more than {MAX_HTTP_TIMEOUT_SECONDS:g} s: an hourly job cannot wait that long")
        return v

    @field_validator("keep_models")
    @classmethod
    def _non_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"{v} is negative")
        return v

    @field_validator("keep_forecast_days")
    @classmethod
    def _keep_forecasts(cls, v: int) -> int:
        if not 0 <= v <= 36500:
            raise ValueError(f"{v} is outside 0..36500 days (0 keeps every forecast)")
        return v

    @field_validator("backfill_days")
    @classmethod
    def _backfill(cls, v: int) -> int:
        if not 0 <= v <= MAX_BACKFILL_DAYS:
            raise ValueError(f"{v} is outside 0..{MAX_BACKFILL_DAYS} days")
        return v

    @field_validator("train_hours")
    @classmethod
    def _train_hours(cls, v: int) -> int:
        if not 1 <= v <= MAX_TRAIN_HOURS:
            raise ValueError(f"{v} is outside 1..{MAX_TRAIN_HOURS} hours")
        return v

    @field_validator("misfire_grace_seconds")
    @classmethod
    def _grace(cls, v: int) -> int:
        if not 0 <= v <= MAX_MISFIRE_GRACE_SECONDS:
            raise ValueError(f"{v} is outside 0..{MAX_MISFIRE_GRACE_SECONDS} seconds (0: however late)")
        return v

    @field_validator("model_overrides")
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

    def horizon_for(self, interval: str) -> int:
        """FORECASTER_HORIZON if it is set (in steps of every market's interval), else the
        interval's default (24 for 1h, 7 for 1d: forecaster/defaults.py)."""
        from forecaster.defaults import defaults_for
        return self.horizon if "horizon" in self.model_fields_set else defaults_for(interval).horizon

    def train_steps_for(self, interval: str) -> int:
        """FORECASTER_TRAIN_HOURS if set (in steps of the market's interval), else the interval's
        default (4,320 for 1h: 180 days)."""
        from forecaster.defaults import defaults_for
        return self.train_hours if "train_hours" in self.model_fields_set else defaults_for(interval).train_steps

    def model_override_dict(self) -> dict:
        from jobs.model_overrides import parse_model_overrides
        return parse_model_overrides(self.model_overrides)

    def market_list(self) -> list[Market]:
        return [parse_market(p) for p in self.markets.split(",")]

    def exchange_url(self, exchange: str) -> str:
        return getattr(self, f"{exchange}_url")


def _psycopg(url: str) -> str:
    """The URL with psycopg 3's scheme and the password hidden, for the hint."""
    return mask_url("postgresql+psycopg://" + url.split("://", 1)[1])


def load_settings(**overrides) -> Settings:
    """Settings from the environment, or SettingsError with one line naming the variable."""
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        variable = ENV_PREFIX + field.upper()
        reason = err["msg"].removeprefix("Value error, ")
        shown = err.get("input")
        if field == "database_url" or not isinstance(shown, (str, int, float)):
            shown = None  # URLs may hold passwords: never echo them
        suffix = f" (got {_echoed(shown)})" if shown is not None else ""
        raise SettingsError(mask_secrets(f"{variable}: {reason}{suffix}")) from None
    for url in (settings.database_url, settings.bithumb_url, settings.upbit_url, settings.binance_url):
        remember_secrets_of(url)  # masked in every line printed from now on (db/redact.py)
    _check_together(settings)
    return settings


def _echoed(value) -> str:
    """A bad value as the error line shows it: quoted, and cut if long (it may be pasted garbage)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}... ({len(str(value)):,} characters)"


def _check_together(settings: Settings) -> None:
    """Values that are fine alone but not together: the model the settings describe, for every
    interval among FORECASTER_MARKETS (1h always: the CLI may name any market), must be one that
    can be built and trained on the training window."""
    from core.intervals import steps_word
    from forecaster.config import ModelConfig
    intervals = dict.fromkeys(["1h", *(m.interval for m in settings.market_list())])
    for interval in intervals:
        horizon = settings.horizon_for(interval)
        try:
            config = ModelConfig.for_interval(interval, **{"horizon": horizon, **settings.model_override_dict()})
        except (TypeError, ValueError) as e:
            raise SettingsError(f"{ENV_PREFIX}MODEL_OVERRIDES: {e} (with {ENV_PREFIX}HORIZON={horizon}"
                                + ("" if interval == "1h" else f", for {interval} markets") + ")") from None
        # The lookback, the horizon and the validation slice all come out of the training window;
        # a window shorter than them cannot hold a single training sample.
        needed = config.lookback + config.horizon + config.val_steps + 1
        train = settings.train_steps_for(interval)
        if train < needed:
            unit = steps_word(interval)
            raise SettingsError(
                f"{ENV_PREFIX}TRAIN_HOURS: {train} {unit} cannot hold one training sample of this model: "
                f"it needs more than lookback {config.lookback} + horizon {config.horizon} + validation "
                f"{config.val_steps} = {needed - 1} {unit} (got {train})")


def unknown_variable_warnings() -> list[str]:
    """Warnings for FORECASTER_* variables (environment or `.env`) that no setting has, each with
    the closest known name; the CLI logs them once at start."""
    from jobs.settings_checks import unknown_variable_warnings as warnings_for
    return warnings_for(list(Settings.model_fields), ENV_PREFIX)
