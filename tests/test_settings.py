"""A bad setting stops the program at start with one line naming the variable; secrets stay hidden."""
from __future__ import annotations

import pytest

from jobs.settings import SettingsError, load_settings
from tests.cli import run_cli


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
    ("FORECASTER_HTTP_TIMEOUT_SECONDS", "0", "not a positive number"),
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
    assert result.stderr.strip() == "error: FORECASTER_HORIZON: -3 is outside 1..168 hours (got '-3')"
    broken = run_cli("db", "upgrade", env={"FORECASTER_DATABASE_URL":
                                           "postgresql+psycopg://u:hunter2@127.0.0.1:1/db"})
    assert broken.returncode == 1 and "hunter2" not in broken.stderr
    assert broken.stderr.strip().startswith("error: database:")
