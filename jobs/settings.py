"""Typed settings from the environment and `.env` (prefix FORECASTER_), validated at start."""
from __future__ import annotations

import re

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from exchanges.base import Market, MarketError, parse_market
from exchanges.registry import DEFAULT_URLS

ENV_PREFIX = "FORECASTER_"
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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
    http_timeout_seconds: float = 20.0
    backfill_days: int = 730              # two years: the volatility model reads that far back
    train_hours: int = 4320               # the training window: 180 days
    keep_models: int = 5                  # weights kept beside the promoted model, per market
    healthz_max_lag_hours: float = 3.0    # /healthz turns 503 when the newest candle is older
    misfire_grace_seconds: int = 600
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
                             "postgresql+psycopg://user:pass@host:5432/db)") from None
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
        parts = [p.strip() for p in v.split(",") if p.strip()]
        if not parts:
            raise ValueError("no market given")
        for p in parts:
            try:
                parse_market(p)
            except MarketError as e:
                raise ValueError(str(e)) from None
        return ",".join(parts)

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
        from jobs.schedules import cron_trigger
        cron_trigger(v)  # raises ValueError with the reason
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

    @field_validator("http_timeout_seconds", "healthz_max_lag_hours")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"{v} is not a positive number")
        return v

    @field_validator("backfill_days", "train_hours", "keep_models", "misfire_grace_seconds")
    @classmethod
    def _non_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"{v} is negative")
        return v

    @field_validator("model_overrides")
    @classmethod
    def _model_overrides(cls, v: str) -> str:
        import json
        from dataclasses import fields

        from forecaster.config import ModelConfig
        if not v.strip():
            return ""
        try:
            overrides = json.loads(v)
        except ValueError:
            raise ValueError('not JSON: expected an object such as {"hidden_size": 8, "max_epochs": 2}') from None
        if not isinstance(overrides, dict):
            raise ValueError('expected a JSON object such as {"hidden_size": 8, "max_epochs": 2}')
        from forecaster.config import RENAMED
        known = ({f.name for f in fields(ModelConfig)} | set(RENAMED)) - {"horizon", "interval"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown model setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        try:
            ModelConfig.from_dict(overrides)
        except (TypeError, ValueError) as e:
            raise ValueError(str(e)) from None
        return v

    def model_override_dict(self) -> dict:
        import json
        return json.loads(self.model_overrides) if self.model_overrides else {}

    def market_list(self) -> list[Market]:
        return [parse_market(p) for p in self.markets.split(",")]

    def exchange_url(self, exchange: str) -> str:
        return getattr(self, f"{exchange}_url")


def _psycopg(url: str) -> str:
    """The URL with psycopg 3's scheme and the password hidden, for the hint."""
    from sqlalchemy.engine import make_url
    fixed = make_url("postgresql+psycopg://" + url.split("://", 1)[1])
    return fixed.render_as_string(hide_password=True)


def load_settings(**overrides) -> Settings:
    """Settings from the environment, or SettingsError with one line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        variable = ENV_PREFIX + field.upper()
        reason = err["msg"].removeprefix("Value error, ")
        shown = err.get("input")
        if field == "database_url" or not isinstance(shown, (str, int, float)):
            shown = None  # URLs may hold passwords: never echo them
        suffix = f" (got {shown!r})" if shown is not None else ""
        raise SettingsError(f"{variable}: {reason}{suffix}") from None
