"""75 bad settings, as an operator mistypes them: each stops the real `forecaster` at start with
exit status 2 and one line naming the variable, no traceback and no password (issue 20: 66 of 75
were refused before; duplicate markets, exchange URLs that are not http(s) URLs, a timeout of a
microsecond, a market with a newline, a seed of -1 or a 40-character symbol passed the start and
failed later). Unknown FORECASTER_* names are warned about with the closest known name."""
from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.cli import run_cli

LONG_SYMBOL = "upbit:" + "A" * 36 + "-KRW"  # 40 characters: the symbol column is String(32)

# (variable, value, words the line must hold); extra variables as "VAR=value" after a "|".
BAD_SETTINGS = [
    # the database
    ("FORECASTER_DATABASE_URL", "", "not a SQLAlchemy URL"),
    ("FORECASTER_DATABASE_URL", "forecaster.db", "not a SQLAlchemy URL"),
    ("FORECASTER_DATABASE_URL", "sqlite:/forecaster.db", "not a SQLAlchemy URL"),
    ("FORECASTER_DATABASE_URL", "postgresql+psycopg://u:hunter2@h:notaport/db", "not a SQLAlchemy URL"),
    ("FORECASTER_DATABASE_URL", "mysql://u:hunter2@h/db", "unsupported database 'mysql'"),
    ("FORECASTER_DATABASE_URL", "http://example.com/db", "unsupported database 'http'"),
    ("FORECASTER_DATABASE_URL", "postgres://u:hunter2@h/db", "libpq's spelling"),
    ("FORECASTER_DATABASE_URL", "postgresql://u@h/db?password=hunter2", "libpq's spelling"),
    # markets
    ("FORECASTER_MARKETS", "", "no market given"),
    ("FORECASTER_MARKETS", " , ", "no market given"),
    ("FORECASTER_MARKETS", "bithumb:eth_krw", "exchange:BASE-QUOTE"),
    ("FORECASTER_MARKETS", "ETH-KRW", "exchange:BASE-QUOTE"),
    ("FORECASTER_MARKETS", "upbit:ETHKRW", "exchange:BASE-QUOTE"),
    ("FORECASTER_MARKETS", "upbit:ETH-KRW;binance:ETH-USDT", "exchange:BASE-QUOTE"),
    ("FORECASTER_MARKETS", "upbit:ETH-KRW@", "exchange:BASE-QUOTE"),
    ("FORECASTER_MARKETS", "kraken:ETH-USD", "unknown exchange 'kraken'"),
    ("FORECASTER_MARKETS", "upbit:ETH-KRW@2h", "unknown interval '2h'"),
    ("FORECASTER_MARKETS", "binance:ETH-USDT,binance:eth-usdt", "binance:ETH-USDT is listed twice"),
    ("FORECASTER_MARKETS", "upbit:ETH-KRW,Upbit:eth-krw@1H", "upbit:ETH-KRW is listed twice"),
    ("FORECASTER_MARKETS", "upbit:ETH-KRW\n", "white space or a control character"),
    ("FORECASTER_MARKETS", "upbit:ETH KRW", "white space or a control character"),
    ("FORECASTER_MARKETS", "upbit:ETH-KRW\r,binance:ETH-USDT", "white space or a control character"),
    ("FORECASTER_MARKETS", LONG_SYMBOL, "40 characters long, more than the 32"),
    # the device, horizon, log level
    ("FORECASTER_DEVICE", "gpu", "not one of auto, cpu, cuda"),
    ("FORECASTER_DEVICE", "cuda:x", "not one of auto, cpu, cuda"),
    ("FORECASTER_DEVICE", "", "not one of auto, cpu, cuda"),
    ("FORECASTER_HORIZON", "abc", "valid integer"),
    ("FORECASTER_HORIZON", "1.5", "valid integer"),
    ("FORECASTER_HORIZON", "0", "outside 1..168"),
    ("FORECASTER_HORIZON", "169", "outside 1..168"),
    ("FORECASTER_HORIZON", "-3", "outside 1..168"),
    ("FORECASTER_LOG_LEVEL", "LOUD", "not one of DEBUG"),
    ("FORECASTER_LOG_LEVEL", "", "not one of DEBUG"),
    # schedules
    ("FORECASTER_INGEST_CRON", "every hour", "fields"),
    ("FORECASTER_INGEST_CRON", "", "has 0 fields"),
    ("FORECASTER_INGEST_CRON", "0 0 30 2 *", "never fires"),
    ("FORECASTER_RETRAIN_CRON", "61 * * * *", "not a valid crontab"),
    ("FORECASTER_RETRAIN_CRON", "0 0 31 2 *", "never fires"),
    ("FORECASTER_INGEST_DELAY_SECONDS", "90", "outside 0..59"),
    ("FORECASTER_INGEST_DELAY_SECONDS", "-1", "outside 0..59"),
    ("FORECASTER_MISFIRE_GRACE_SECONDS", "100000000000000", "outside 0..604800 seconds"),
    ("FORECASTER_MISFIRE_GRACE_SECONDS", "-5", "outside 0..604800 seconds"),
    # the HTTP endpoint and the exchanges
    ("FORECASTER_HTTP_PORT", "70000", "not a TCP port"),
    ("FORECASTER_HTTP_PORT", "-1", "not a TCP port"),
    ("FORECASTER_HTTP_PORT", "http", "valid integer"),
    ("FORECASTER_HTTP_HOST", "example.com", "not an IP address"),
    ("FORECASTER_HTTP_HOST", "", "not an IP address"),
    ("FORECASTER_HTTP_TIMEOUT_SECONDS", "0", "not a positive finite number"),
    ("FORECASTER_HTTP_TIMEOUT_SECONDS", "-5", "not a positive finite number"),
    ("FORECASTER_HTTP_TIMEOUT_SECONDS", "inf", "not a positive finite number"),
    ("FORECASTER_HTTP_TIMEOUT_SECONDS", "nan", "not a positive finite number"),
    ("FORECASTER_HTTP_TIMEOUT_SECONDS", "0.000001", "less than 0.1 s"),
    ("FORECASTER_HTTP_TIMEOUT_SECONDS", "0.05", "less than 0.1 s"),
    ("FORECASTER_HTTP_TIMEOUT_SECONDS", "86400", "an hourly job cannot wait"),
    ("FORECASTER_BINANCE_URL", "not a url", "not an http:// or https:// URL"),
    ("FORECASTER_BINANCE_URL", "ftp://127.0.0.1/", "not an http:// or https:// URL"),
    ("FORECASTER_BINANCE_URL", "", "not an http:// or https:// URL"),
    ("FORECASTER_BITHUMB_URL", "http://", "without a host"),
    ("FORECASTER_BITHUMB_URL", "https://api.bithumb.com:99999", "Port out of range"),
    ("FORECASTER_UPBIT_URL", "api.upbit.com", "not an http:// or https:// URL"),
    ("FORECASTER_UPBIT_URL", "http://exa mple.com", "white space or a control character"),
    # data windows and retention
    ("FORECASTER_BACKFILL_DAYS", "1000000000", "outside 0..3650 days"),
    ("FORECASTER_BACKFILL_DAYS", "-1", "outside 0..3650 days"),
    ("FORECASTER_TRAIN_STEPS", "0", "outside 1..87600 steps"),
    ("FORECASTER_TRAIN_STEPS", "1000", "cannot hold one training sample"),
    ("FORECASTER_TRAIN_HOURS", "0", "outside 1..87600 steps"),  # the old name, still read
    ("FORECASTER_TRAIN_HOURS", "1000", "cannot hold one training sample"),
    ("FORECASTER_KEEP_MODELS", "-1", "is negative"),
    ("FORECASTER_KEEP_FORECAST_DAYS", "-1", "outside 0..36500 days"),
    ("FORECASTER_HEALTHZ_MAX_LAG_STEPS", "nan", "not a positive finite number"),
    ("FORECASTER_HEALTHZ_MAX_LAG_STEPS", "0", "not a positive finite number"),
    ("FORECASTER_HEALTHZ_MAX_LAG_HOURS", "0", "not a positive finite number"),  # the old name
    # workers
    ("FORECASTER_TRAIN_WORKERS", "0", "not auto or a number of trainings 1..64"),
    ("FORECASTER_TRAIN_WORKERS", "many", "not auto or a number of trainings 1..64"),
    ("FORECASTER_INGEST_WORKERS", "0", "outside 1..64"),
    ("FORECASTER_INGEST_WORKERS", "100", "outside 1..64"),
    # the model
    ("FORECASTER_MODEL_OVERRIDES", '{"lr":"fast"}', "lr must be a number"),
    ("FORECASTER_MODEL_OVERRIDES", '{"batch_size":0}', "batch_size must be >= 1"),
    ("FORECASTER_MODEL_OVERRIDES", '{"lr": NaN}', "lr must be a finite number"),
    ("FORECASTER_MODEL_OVERRIDES", '{"max_epochs": 2.5}', "max_epochs must be an integer"),
    ("FORECASTER_MODEL_OVERRIDES", '{"seed": -1}', "seed must be >= 0"),
    ("FORECASTER_MODEL_OVERRIDES", "hidden_size=8", "not JSON"),
    ("FORECASTER_MODEL_OVERRIDES", "[1, 2]", "expected a JSON object"),
    ("FORECASTER_MODEL_OVERRIDES", '{"hiden_size": 8}', "unknown model setting(s) hiden_size"),
    ("FORECASTER_MODEL_OVERRIDES", '{"dropout": 1.5}', "dropout must be >= 0.0 and <= 1.0"),
    ("FORECASTER_MODEL_OVERRIDES", '{"val_hours": 150}|FORECASTER_HORIZON=168', "val_steps must exceed horizon"),
]


def _run(case, tmp_path_factory) -> tuple[int, str]:
    variable, value, _words = case
    value, *extra = value.split("|")
    env = dict(kv.split("=", 1) for kv in extra)
    env |= {"FORECASTER_DATABASE_URL": "sqlite:///never-created.db", variable: value}
    # `status`: a setting let through by mistake must not start a daemon that calls an exchange
    result = run_cli("status", env=env, timeout=120, cwd=tmp_path_factory.mktemp("cwd"))
    return result.returncode, result.stderr


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case run once, a few at a time: each is a fresh process that only reads settings."""
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: _run(case, tmp_path_factory), BAD_SETTINGS))
    return dict(zip(range(len(BAD_SETTINGS)), results))


def test_the_table_has_the_audits_75_cases():
    assert len(BAD_SETTINGS) >= 75


@pytest.mark.parametrize("index", range(len(BAD_SETTINGS)),
                         ids=[f"{v.removeprefix('FORECASTER_')}={x[:30]!r}" for v, x, _ in BAD_SETTINGS])
def test_a_bad_setting_stops_the_program_at_start_in_one_line(outcomes, index):
    variable, _value, words = BAD_SETTINGS[index]
    rc, stderr = outcomes[index]
    lines = stderr.strip().splitlines()
    assert rc == 2, stderr
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith(f"error: {variable}: ") and words in lines[0], stderr
    assert "hunter2" not in stderr


def test_a_value_of_100_kb_is_cut_in_the_error_line(tmp_path):
    result = run_cli("status", env={"FORECASTER_MARKETS": "upbit:" + "X" * 100_000}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: FORECASTER_MARKETS: market 'upbit:XXX")
    assert len(result.stderr) < 400 and "characters" in result.stderr


def test_a_misspelt_variable_is_warned_about_once_with_the_closest_name(tmp_path):
    (tmp_path / ".env").write_text("FORECASTER_HORIZN=12\n")
    result = run_cli("status", cwd=tmp_path, env={"FORECASTER_MARKET": "upbit:ETH-KRW",
                                                  "FORECASTER_DATABASE_URL": "sqlite:///never-created.db",
                                                  "FORECASTER_TEST_PG": "postgresql://x@h/db"})
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 2, result.stderr
    assert "FORECASTER_HORIZN is not a setting and is ignored; did you mean FORECASTER_HORIZON?" in warnings[0]
    assert "FORECASTER_MARKET is not a setting and is ignored; did you mean FORECASTER_MARKETS?" in warnings[1]


@pytest.mark.parametrize("market, words", [
    ("upbit:ETH-KRW\n", "market 'upbit:ETH-KRW\\n' has white space or a control character in it"),
    (" upbit:ETH-KRW", "has white space or a control character in it"),
    (LONG_SYMBOL, "is 40 characters long, more than the 32 the database stores"),
])
def test_the_command_line_refuses_a_market_key_with_a_newline_or_a_long_symbol(sqlite_url, tmp_path, market, words):
    env = {"FORECASTER_DATABASE_URL": sqlite_url}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    (tmp_path / "c.csv").write_text("ts,open,high,low,close,volume\n2023-05-10T00:00:00Z,1,2,0.5,1.5,1\n")
    for args in (("status", "--market", market), ("import-csv", str(tmp_path / "c.csv"), "--market", market)):
        result = run_cli(*args, env=env)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
        assert words in result.stderr, result.stderr
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:  # nothing stored under a mangled key
        assert conn.execute("SELECT COUNT(*) FROM candles").fetchone() == (0,)
