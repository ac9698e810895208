"""A bad setting stops the program at start with one line naming the variable; secrets stay hidden."""
from __future__ import annotations

import pytest

from jobs.settings import SettingsError, load_settings
from tests.helpers.cli import run_cli


@pytest.mark.parametrize("variable, value, words", [
    ("FORECASTER_HORIZON", "abc", "valid integer"),
    ("FORECASTER_HORIZON", "0", "outside 1..168"),
    ("FORECASTER_MARKETS", "bithumb:eth_krw", "exchange:BASE-QUOTE"),
    ("FORECASTER_MARKETS", "kraken:ETH-USD", "unknown exchange"),
    ("FORECASTER_DEVICE", "gpu", "auto, cpu, cuda"),
    ("FORECASTER_INGEST_CRON", "every hour", "fields"),
    ("FORECASTER_RETRAIN_CRON", "61 * * * *", "not a valid crontab"),
    ("FORECASTER_HTTP_PORT", "70000", "not a TCP port"),
    ("FORECASTER_DATABASE_URL", "mysql://u:hunter2@h/db", "unsupported database"),
    ("FORECASTER_LOG_LEVEL", "LOUD", "not one of"),
    ("FORECASTER_INGEST_DELAY_SECONDS", "90", "outside 0..59"),
    ("FORECASTER_HTTP_TIMEOUT_SECONDS", "0", "not a positive finite number"),
    ("FORECASTER_HTTP_HOST", "example.com", "not an IP address"),
    ("FORECASTER_KEEP_FORECAST_DAYS", "-1", "outside 0..36500 days"),
    ("FORECASTER_INGEST_WORKERS", "0", "outside 1..64"),
])
def test_bad_values_name_the_variable(monkeypatch, variable, value, words):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(f"{variable}: ") and words in str(err.value)
    assert "hunter2" not in str(err.value)


def test_env_file_in_the_working_directory_is_read(tmp_path):
    (tmp_path / ".env").write_text("FORECASTER_MARKETS=upbit:ETH-KRW, binance:ETH-USDT\nFORECASTER_HORIZON=12\n")
    settings = load_settings()
    assert [str(m) for m in settings.market_list()] == ["upbit:ETH-KRW", "binance:ETH-USDT"]
    assert settings.horizon == 12


def test_the_cli_stops_with_one_line_and_hides_the_password():
    result = run_cli("status", env={"FORECASTER_DATABASE_URL": "postgresql+psycopg://u:hunter2@/db",
                                    "FORECASTER_HORIZON": "-3"})
    assert result.returncode == 2
    assert result.stderr.strip() == "error: FORECASTER_HORIZON: -3 is outside 1..168 steps (got '-3')"
    broken = run_cli("db", "upgrade", env={"FORECASTER_DATABASE_URL":
                                           "postgresql+psycopg://u:hunter2@127.0.0.1:1/db"})
    assert broken.returncode == 1 and "hunter2" not in broken.stderr
    assert broken.stderr.strip().startswith("error: database:")


# Values the audit of issue 9 found accepted at start and failing later, with a traceback, in a
# job: each must now stop the program at start with one line naming the variable.
ACCEPTED_THEN_FAILED = [
    ("FORECASTER_BACKFILL_DAYS", "1000000000", "outside 0..3650 days"),
    ("FORECASTER_MODEL_OVERRIDES", '{"lr":"fast"}', "lr must be a number"),
    ("FORECASTER_MODEL_OVERRIDES", '{"batch_size":0}', "batch_size must be >= 1"),
    ("FORECASTER_MODEL_OVERRIDES", '{"lr": NaN}', "lr must be a finite number"),
    ("FORECASTER_MODEL_OVERRIDES", '{"max_epochs": 2.5}', "max_epochs must be an integer"),
    ("FORECASTER_TRAIN_STEPS", "0", "outside 1..87600 steps"),
    ("FORECASTER_TRAIN_STEPS", "1000", "cannot hold one training sample"),
    ("FORECASTER_RETRAIN_CRON", "0 0 31 2 *", "never fires"),
    ("FORECASTER_INGEST_CRON", "0 0 30 2 *", "never fires"),
    ("FORECASTER_HTTP_TIMEOUT_SECONDS", "inf", "not a positive finite number"),
    ("FORECASTER_HTTP_TIMEOUT_SECONDS", "86400", "an hourly job cannot wait"),
    ("FORECASTER_HEALTHZ_MAX_LAG_STEPS", "nan", "not a positive finite number"),
    ("FORECASTER_MISFIRE_GRACE_SECONDS", "100000000000000", "outside 0..604800 seconds"),
]


@pytest.mark.parametrize("variable, value, words", ACCEPTED_THEN_FAILED)
def test_values_that_would_fail_later_are_refused_at_start(monkeypatch, variable, value, words):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(f"{variable}: ") and words in str(err.value), str(err.value)


def test_a_model_that_cannot_meet_the_horizon_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("FORECASTER_HORIZON", "168")
    monkeypatch.setenv("FORECASTER_MODEL_OVERRIDES", '{"val_hours": 150}')  # the older name still read
    with pytest.raises(SettingsError, match="^FORECASTER_MODEL_OVERRIDES: val_steps must exceed horizon "
                                            r"\(with FORECASTER_HORIZON=168\)"):
        load_settings()


@pytest.mark.parametrize("variable, value, words", [ACCEPTED_THEN_FAILED[i] for i in (0, 1, 2, 5, 7, 9)])
def test_the_daemon_refuses_them_in_one_line_without_a_traceback(variable, value, words):
    result = run_cli("run", env={variable: value, "FORECASTER_DATABASE_URL": "sqlite:///never-created.db"},
                     timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith(f"error: {variable}: ") and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_command_line_options_are_bounded_too(sqlite_url):
    env = {"FORECASTER_DATABASE_URL": sqlite_url}
    for args in (("ingest", "--backfill-days", "1000000000"), ("train", "--train-steps", "1000000000"),
                 ("train", "--train-hours", "1000000000"),
                 ("backtest", "--market", "binance:ETH-USDT", "--days", "1000000000")):
        result = run_cli(*args, env=env, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr and "Invalid value" in result.stderr, (args, result.stderr)


# Settings renamed because they count steps of each market's interval, not hours (docs/glossary.md):
# (new variable, old variable, field).
RENAMED = [("FORECASTER_TRAIN_STEPS", "FORECASTER_TRAIN_HOURS", "train_steps"),
           ("FORECASTER_HEALTHZ_MAX_LAG_STEPS", "FORECASTER_HEALTHZ_MAX_LAG_HOURS", "healthz_max_lag_steps")]


@pytest.mark.parametrize("new, old, field", RENAMED)
def test_a_renamed_setting_is_read_under_its_new_name_and_its_old_one(monkeypatch, new, old, field):
    monkeypatch.setenv(new, "5000")
    assert getattr(load_settings(), field) == 5000
    monkeypatch.delenv(new)
    monkeypatch.setenv(old, "6000")
    assert getattr(load_settings(), field) == 6000


@pytest.mark.parametrize("new, old, field", RENAMED)
def test_a_renamed_setting_in_the_env_file_is_read_under_its_old_name(tmp_path, new, old, field):
    (tmp_path / ".env").write_text(f"{old}=7000\n")
    assert getattr(load_settings(), field) == 7000


@pytest.mark.parametrize("new, old, field", RENAMED)
def test_an_error_names_the_variable_the_user_set(monkeypatch, new, old, field):
    monkeypatch.setenv(old, "nan" if "LAG" in old else "0")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(f"{old}: ")
    monkeypatch.delenv(old)
    monkeypatch.setenv(new, "nan" if "LAG" in new else "0")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(f"{new}: ")


@pytest.mark.parametrize("new, old, field", RENAMED)
def test_a_renamed_setting_given_under_both_names_is_refused_naming_both(monkeypatch, tmp_path, new, old, field):
    monkeypatch.setenv(new, "5000")
    (tmp_path / ".env").write_text(f"{old}=6000\n")  # the environment would win: still not a guess
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == f"{new} and {old} are both set: {old} is the old name of {new}; keep {new} alone"


def test_the_old_names_are_not_warned_about_as_unknown(monkeypatch):
    from jobs.settings import unknown_variable_warnings
    monkeypatch.setenv("FORECASTER_TRAIN_HOURS", "5000")
    monkeypatch.setenv("FORECASTER_HEALTHZ_MAX_LAG_HOURS", "2")
    assert unknown_variable_warnings() == []


def test_a_too_short_training_window_is_told_in_the_market_s_own_steps(monkeypatch):
    monkeypatch.setenv("FORECASTER_TRAIN_STEPS", "100")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith("FORECASTER_TRAIN_STEPS: 100 hours cannot hold one training sample")
    assert "validation 2160 = 2352 hours (got 100)" in str(err.value)
