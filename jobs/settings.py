"""Typed settings from the environment and `.env` (prefix FORECASTER_), validated at start: the
fields and their defaults here, the check of each value in jobs/settings_validation.py."""
from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, create_model
from pydantic_settings import SettingsConfigDict

from core.market import Market, MarketError
from db.redact import mask_secrets, mask_url, remember_secrets_of
from exchanges.base import parse_market
from exchanges.registry import EXCHANGES
# The bounds are the checks'; the command line bounds its options with the same ones.
from jobs.settings_validation import ENV_PREFIX, MAX_BACKFILL_DAYS, MAX_TRAIN_STEPS, SettingChecks  # noqa: F401

# Settings whose old name said hours but that count steps of each market's interval: new field ->
# old field. The old variable is still read (docs/glossary.md); setting both is an error.
RENAMED = {"train_steps": "train_hours", "healthz_max_lag_steps": "healthz_max_lag_hours"}


def _read_as(field: str) -> AliasChoices:
    """The variables a renamed setting is read from: its name, then its old one."""
    return AliasChoices(ENV_PREFIX + field.upper(), ENV_PREFIX + RENAMED[field].upper())


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


class _Settings(SettingChecks):
    # populate_by_name: Settings(train_steps=...) in code, beside the variables' names in the environment.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore",
                                      validate_default=True, populate_by_name=True)

    database_url: str = "sqlite:///forecaster.db"
    markets: str = "bithumb:ETH-KRW"
    device: str = "auto"
    horizon: int = 24
    # and one `<exchange>_url` per row of exchanges/registry.py (FORECASTER_BITHUMB_URL, ...): below
    log_level: str = "INFO"
    ingest_cron: str = "0 * * * *"
    ingest_delay_seconds: int = 10        # the exchange needs a few seconds to close the hour
    retrain_cron: str = "30 0 * * *"
    http_port: int = 9108
    http_host: str = "127.0.0.1"          # 0.0.0.0 only where a container's port mapping needs it
    http_timeout_seconds: float = 20.0
    backfill_days: int = 730              # two years: the volatility model reads that far back
    # The training window, in steps of each market's interval (4320 for 1h: 180 days).
    train_steps: int = Field(4320, validation_alias=_read_as("train_steps"))
    keep_models: int = 5                  # weights kept beside the promoted model, per market
    keep_forecast_days: int = 0           # live forecasts older than this are deleted daily; 0 keeps all
    # /healthz turns 503 when more candles than this, in the market's steps, closed after the newest stored.
    healthz_max_lag_steps: float = Field(3.0, validation_alias=_read_as("healthz_max_lag_steps"))
    misfire_grace_seconds: int = 600
    # Trainings at once per daemon: "auto" (1 on a GPU; on a CPU the measured best, see
    # daemon/training.py) or a number; the rest wait, stalest model first.
    train_workers: Literal["auto"] | int = "auto"
    ingest_workers: int = 4               # ingest + forecast of markets at once, beside the trainings
    lock_lease_seconds: float = 60.0      # Postgres: a frozen daemon's job locks pass on after this
    # JSON object of ModelConfig fields to override, e.g. {"hidden_size": 8, "max_epochs": 2}: a
    # smaller model for tests or slow machines. The horizon comes from FORECASTER_HORIZON.
    model_overrides: str = ""

    def horizon_for(self, interval: str) -> int:
        """FORECASTER_HORIZON if it is set (in steps of every market's interval), else the
        interval's default (24 for 1h, 7 for 1d: forecaster/defaults.py)."""
        from forecaster.defaults import defaults_for
        return self.horizon if "horizon" in self.model_fields_set else defaults_for(interval).horizon

    def train_steps_for(self, interval: str) -> int:
        """FORECASTER_TRAIN_STEPS if set (in steps of the market's interval), else the interval's
        default (4,320 for 1h: 180 days)."""
        from forecaster.defaults import defaults_for
        return self.train_steps if "train_steps" in self.model_fields_set else defaults_for(interval).train_steps

    def model_override_dict(self) -> dict:
        from jobs.model_overrides import parse_model_overrides
        return parse_model_overrides(self.model_overrides)

    def market_list(self) -> list[Market]:
        return [parse_market(p) for p in self.markets.split(",")]

    def exchange_url(self, exchange: str) -> str:
        return getattr(self, EXCHANGES[exchange].url_field)

    def exchange_urls(self) -> list[str]:
        return [self.exchange_url(name) for name in EXCHANGES]


# The settings, with a URL field per exchange of the registry: a new exchange is its module and its
# registry row, and its FORECASTER_<NAME>_URL is read, checked and documented by `--help` like these.
Settings = create_model("Settings", __base__=_Settings, __module__=__name__,
                        **{ex.url_field: (str, ex.default_url) for ex in EXCHANGES.values()})


def load_settings(**overrides) -> Settings:
    """Settings from the environment, or SettingsError with one line naming the variable."""
    _refuse_both_names()
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        err = e.errors()[0]
        # A renamed setting's error is located at its variable's name, the others' at the field's.
        field = str(err["loc"][0]).lower().removeprefix(ENV_PREFIX.lower()) if err["loc"] else "?"
        variable = variable_name(field)
        reason = err["msg"].removeprefix("Value error, ")
        shown = err.get("input")
        if field == "database_url" or not isinstance(shown, (str, int, float)):
            shown = None  # URLs may hold passwords: never echo them
        suffix = f" (got {_echoed(shown)})" if shown is not None else ""
        raise SettingsError(mask_secrets(f"{variable}: {reason}{suffix}")) from None
    for url in (settings.database_url, *settings.exchange_urls()):
        remember_secrets_of(url)  # masked in every line printed from now on (db/redact.py)
    _check_together(settings)
    return settings


def variable_name(field: str) -> str:
    """The variable that sets `field`, as the user wrote it: a renamed setting's old name when only
    that one is set, so that an error names what is in their environment."""
    from jobs.settings_checks import variables_set
    new = ENV_PREFIX + field.upper()
    old = ENV_PREFIX + RENAMED[field].upper() if field in RENAMED else None
    given = variables_set(ENV_PREFIX)
    return old if old in given and new not in given else new


def _refuse_both_names() -> None:
    """A renamed setting given under both names: which one counts would depend on where each is
    written (the environment beats `.env`), so neither is guessed."""
    from jobs.settings_checks import variables_set
    given = variables_set(ENV_PREFIX)
    for field, old_field in RENAMED.items():
        new, old = ENV_PREFIX + field.upper(), ENV_PREFIX + old_field.upper()
        if new in given and old in given:
            raise SettingsError(f"{new} and {old} are both set: {old} is the old name of {new}; "
                                f"keep {new} alone")


def setting_variables() -> set[str]:
    """Every FORECASTER_* variable a setting reads, old names of renamed settings included."""
    return {ENV_PREFIX + name.upper() for name in [*Settings.model_fields, *RENAMED.values()]}


def _echoed(value) -> str:
    """A bad value as the error line shows it: quoted, and cut if long (it may be pasted garbage)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}... ({len(str(value)):,} characters)"


def _check_together(settings: Settings) -> None:
    """Values that are fine alone but not together: the model the settings describe, for every
    interval among FORECASTER_MARKETS (1h always: the CLI may name any market), must be one that
    can be built and trained on the training window."""
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
            from core.intervals import describe_steps
            raise SettingsError(
                f"{variable_name('train_steps')}: {describe_steps(train, interval)} cannot hold one training "
                f"sample of this model: it needs more than lookback {config.lookback} + horizon {config.horizon} "
                f"+ validation {config.val_steps} = {describe_steps(needed - 1, interval)} (got {train})")


def unknown_variable_warnings() -> list[str]:
    """Warnings for FORECASTER_* variables (environment or `.env`) that no setting has, each with
    the closest known name; the CLI logs them once at start."""
    from jobs.settings_checks import unknown_variable_warnings as warnings_for
    return warnings_for([*Settings.model_fields, *RENAMED.values()], ENV_PREFIX)
