"""The command line as an analyst uses it, in a subprocess on SQLite and Postgres: a model trained on
a past window without replacing the live one, past origins forecast with `predict --at` and scored
at once, `status` showing every market of the store, and every failure as one `error:` line."""
from __future__ import annotations

import json
import re
import sqlite3

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.helpers.cli import run_cli
from tests.helpers.paths import BINANCE_CSV

TINY = json.dumps({"lookback": 48, "hidden_size": 8, "max_epochs": 2, "val_hours": 200, "patience": 1})
UNTIL = "2023-12-20T23:00Z"  # the past window's end: the slice runs on to 2023-12-31T23:00Z


@pytest.fixture
def store(db_url, tmp_path):
    """A migrated database with the last 1,400 hours of the real Binance series, imported with the
    CLI in another case than the canonical one; the env of a user who serves only bithumb."""
    env = {"FORECASTER_DATABASE_URL": db_url, "FORECASTER_MARKETS": "bithumb:ETH-KRW",
           "FORECASTER_MODEL_OVERRIDES": TINY, "FORECASTER_DEVICE": "cpu"}
    pd.read_csv(BINANCE_CSV).tail(1_400).to_csv(tmp_path / "binance.csv", index=False)
    assert run_cli("db", "upgrade", env=env).returncode == 0
    done = run_cli("import-csv", str(tmp_path / "binance.csv"), "--market", "Binance:eth-usdt", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("binance:ETH-USDT: 1400 rows read")  # normalised
    return env


def _query(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def one_error_line(result) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_past_origins_forecast_with_a_model_trained_up_to_them_and_scored_at_once(store):
    env, url = store, store["FORECASTER_DATABASE_URL"]
    early = run_cli("predict", "-m", "binance:ETH-USDT", "--at", "2023-12-21T00:00Z..2023-12-22T23:00Z", env=env)
    assert "no model was trained on candles up to 2023-12-21T00:00Z" in one_error_line(early)

    trained = run_cli("train", "-m", "binance:ETH-USDT", "--until", UNTIL, "--train-steps", "1000", env=env)
    assert trained.returncode == 0, trained.stderr
    assert " trained (" in trained.stdout and "not promoted" in trained.stdout
    assert _query(url, "SELECT status, train_end FROM model_runs")[0][0] == "trained"
    assert "no promoted model" in one_error_line(run_cli("predict", "-m", "binance:ETH-USDT", env=env))

    at = run_cli("predict", "-m", "binance:ETH-USDT", "--at", "2023-12-20T12:00Z..2023-12-22T23:00Z", env=env)
    assert at.returncode == 0, at.stderr
    # origins before the data of every model ended are not forecast: 12:00..22:00 have none
    assert "1176 live forecasts from 49 origins" in at.stdout and "11 origins precede" in at.stdout
    scored = _query(url, "SELECT MIN(origin_time), MAX(origin_time), COUNT(*), COUNT(DISTINCT model_run_id) "
                         "FROM forecast_accuracy WHERE kind = 'live'")[0]
    assert pd.Timestamp(str(scored[0])).strftime("%Y-%m-%dT%H:%MZ") == UNTIL
    assert pd.Timestamp(str(scored[1])).strftime("%Y-%m-%dT%H:%MZ") == "2023-12-22T23:00Z"
    assert scored[2] == 49 * 24 and scored[3] == 1  # every target known, one model

    again = run_cli("predict", "-m", "binance:ETH-USDT", "--at", "2023-12-21T00:00Z", env=env)
    assert again.returncode == 0 and "1 origins already had one (kept" in again.stdout
    replaced = run_cli("predict", "-m", "binance:ETH-USDT", "--at", "2023-12-21T00:00Z", "--replace", env=env)
    assert replaced.returncode == 0 and "24 live forecasts from 1 origins" in replaced.stdout

    promoted = run_cli("train", "-m", "binance:ETH-USDT", "--until", UNTIL, "--train-hours", "1000", "--promote",
                       env=env)
    assert promoted.returncode == 0 and " promoted (" in promoted.stdout, promoted.stdout + promoted.stderr
    # the train message and status print the same validation figures
    figures = re.search(r"val MAE [^;]*?80% coverage \d\.\d+", promoted.stdout).group(0)
    status = run_cli("status", "-m", "binance:ETH-USDT", env=env)
    assert status.returncode == 0 and figures in status.stdout


def test_status_shows_every_market_of_the_store_marked_configured_or_not(store):
    env = store
    assert run_cli("backtest", "-m", "binance:ETH-USDT", "--days", "1", "--stride", "24", "--train-steps", "1000",
                   env=env).returncode == 0
    report = json.loads(run_cli("status", "--json", env=env).stdout)
    markets = {m["market"]: m for m in report["markets"]}
    assert list(markets) == ["bithumb:ETH-KRW", "binance:ETH-USDT"]
    assert markets["bithumb:ETH-KRW"]["configured"] and markets["bithumb:ETH-KRW"]["candles"] == 0
    binance = markets["binance:ETH-USDT"]
    assert not binance["configured"] and binance["candles"] == 1400
    assert binance["jobs"]["import"]["status"] == "ok" and binance["jobs"]["backtest"]["status"] == "ok"
    assert binance["backtest"]["days"] == 1 and binance["backtest"]["n_origins"] == 1
    text = run_cli("status", env=env).stdout
    assert "binance:ETH-USDT  (1h candles, in the database only, not in FORECASTER_MARKETS)" in text
    assert "bithumb:ETH-KRW  (1h candles, configured)" in text
    assert re.search(r"last backtest   run 1 at .*: 1 days, stride 24 hours, 1 origins", text)


def test_status_on_a_missing_sqlite_file_says_so_and_creates_nothing(tmp_path):
    path = tmp_path / "typo.db"
    result = run_cli("status", env={"FORECASTER_DATABASE_URL": f"sqlite:///{path}"})
    line = one_error_line(result)
    assert f"no database at {path}" in line and "forecaster db upgrade" in line
    assert not path.exists()


@pytest.mark.parametrize("url, hint", [
    ("postgres://u:hunter2@db.example:5432/fc", "write postgresql+psycopg://u:***@db.example:5432/fc"),
    ("postgresql://u:hunter2@db.example/fc", "write postgresql+psycopg://u:***@db.example/fc"),
])
def test_a_libpq_url_gets_the_spelling_sqlalchemy_needs(url, hint):
    line = one_error_line(run_cli("status", env={"FORECASTER_DATABASE_URL": url}))
    assert line.startswith("error: FORECASTER_DATABASE_URL: ") and hint in line and "hunter2" not in line


def test_usage_errors_and_job_failures_are_one_error_line(sqlite_url, tmp_path):
    env = {"FORECASTER_DATABASE_URL": sqlite_url}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    bad_kind = run_cli("plot", "-m", "binance:ETH-USDT", "--out", str(tmp_path / "c.png"), "--kind", "lvie", env=env)
    assert bad_kind.returncode == 2 and "'lvie' is not one of 'live', 'backtest'" in one_error_line(bad_kind)
    assert not (tmp_path / "c.png").exists()
    bad_time = run_cli("predict", "-m", "binance:ETH-USDT", "--at", "yesterday", env=env)
    assert "--at 'yesterday' is not a time: write ISO-8601" in one_error_line(bad_time)
    bad_zone = run_cli("plot", "-m", "binance:ETH-USDT", "--out", str(tmp_path / "c.png"), "--tz", "Mars/Base",
                       env=env)
    assert "--tz 'Mars/Base' is not a time zone" in one_error_line(bad_zone)
    failed = run_cli("predict", "-m", "binance:ETH-USDT", env=env)  # a job that fails is recorded...
    assert "no promoted model yet" in one_error_line(failed)  # ...and said once, not logged as well
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT job, status FROM job_runs").fetchall() == [("predict", "failed")]


def test_every_option_has_help_and_times_say_their_format():
    from typer.main import get_command

    from cli.main import app

    def commands(group, path=()):
        for name, cmd in getattr(group, "commands", {}).items():
            yield from commands(cmd, (*path, name)) if hasattr(cmd, "commands") else [((*path, name), cmd)]

    seen = 0
    for path, cmd in commands(get_command(app)):
        assert cmd.help, f"forecaster {' '.join(path)} has no help"
        for param in cmd.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"forecaster {' '.join(path)} {param.opts[0]} has no help text"
                seen += 1
            if param.param_type_name == "argument":
                assert getattr(param, "help", None), f"forecaster {' '.join(path)} {param.name} has no help"
    assert seen >= 20
    for command, option in (("train", "--until"), ("predict", "--at")):
        text = run_cli(command, "--help").stdout
        assert option in text and "ISO-8601" in text and "2023-12-01T00:00Z" in text


def test_stride_and_train_steps_are_the_documented_names_and_the_old_ones_still_parse(tmp_path):
    help_text = run_cli("backtest", "--help").stdout
    assert "--stride" in help_text and "--train-steps" in help_text
    assert "--step " not in help_text and "--train-hours" not in help_text  # hidden, still accepted
    for old, new in (("--step", "--stride"), ("--train-hours", "--train-steps")):
        both = run_cli("backtest", "-m", "binance:ETH-USDT", old, "240", new, "240",
                       env={"FORECASTER_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"})
        assert both.returncode == 2 and f"{old} is the old name of {new}: give one of them" in one_error_line(both)
    assert "--train-hours" not in run_cli("train", "--help").stdout
