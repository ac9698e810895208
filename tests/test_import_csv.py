"""`forecaster import-csv` on real rows of tests/data, on SQLite and Postgres."""
from __future__ import annotations

import gzip
import shutil
from datetime import datetime, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from core.market import Market
from db.candles import load_frame
from exchanges.base import parse_market
from jobs.import_csv import CsvError, import_csv
from tests.helpers.cli import run_cli
from tests.helpers.paths import BINANCE_CSV, UPBIT_CSV
from tests.helpers.services import services_for

MARKET = parse_market("binance:ETH-USDT")


def _slice(path, start: int, rows: int) -> pd.DataFrame:
    """`rows` data rows of the file from data row `start` (0-based), as the text the file holds."""
    return pd.read_csv(path, dtype=str, skiprows=range(1, start + 1), nrows=rows)


def _write(df: pd.DataFrame, path) -> None:
    df.to_csv(path, index=False)


def test_import_round_trips_exactly_and_rerun_adds_nothing(migrated, tmp_path):
    url, engine, sessions = migrated
    raw = _slice(BINANCE_CSV, 1_000, 3_000)  # 2023-02-11..06-16: the 2023-03-24 outage (0 volume, a gap)
    csv = tmp_path / "slice.csv"
    _write(raw, csv)
    first = import_csv(services_for(migrated), csv, MARKET)
    assert (first.rows_read, first.new_rows) == (3_000, 3_000)
    with sessions() as s:
        stored = load_frame(session=s, market=Market("binance", "ETH", "USDT"))
        ingested = s.execute(sa.text("SELECT MIN(ingested_at), MAX(ingested_at) FROM candles")).one()
    expected = raw.assign(ts=pd.to_datetime(raw.ts, utc=True)).set_index("ts")
    assert list(stored.index) == list(expected.index)
    for col in ("open", "high", "low", "close", "volume"):
        assert stored[col].tolist() == expected[col].astype(float).tolist()  # exact, not approximate
    second = import_csv(services_for(migrated), csv, MARKET)
    assert second.new_rows == 0
    with sessions() as s:
        assert s.execute(sa.text("SELECT MIN(ingested_at), MAX(ingested_at) FROM candles")).one() == ingested


def test_epoch_millisecond_timestamps_are_accepted(migrated, tmp_path):
    _, _, sessions = migrated
    raw = _slice(UPBIT_CSV, 100, 50)
    epoch = pd.Timestamp(0, tz="UTC")
    ms = raw.assign(ts=((pd.to_datetime(raw.ts, utc=True) - epoch) // pd.Timedelta(milliseconds=1)).astype(str))
    csv = tmp_path / "ms.csv"
    _write(ms, csv)
    assert import_csv(services_for(migrated), csv, parse_market("upbit:ETH-KRW")).new_rows == 50
    with sessions() as s:
        stored = load_frame(session=s, market=Market("upbit", "ETH", "KRW"))
    assert stored.index[0] == pd.Timestamp(raw.ts[0])


@pytest.mark.parametrize("corrupt, problem", [
    (lambda df: df.assign(close=df.close.where(df.index != 700, "abc")), "line 702: a price or volume is not a number"),
    (lambda df: df.assign(high=df.high.where(df.index != 1500, "1.0")), "line 1502: prices break low <= open, close <= high"),
    (lambda df: df.assign(ts=df.ts.where(df.index != 10, "yesterday")), "line 12: ts is not ISO-8601"),
    (lambda df: df.assign(ts=df.ts.where(df.index != 20, df.ts[19])), "line 22: ts appears twice"),
    (lambda df: df.assign(ts=df.ts.where(df.index != 1900, df.ts[3])), "line 1902: ts appears twice"),
])
def test_a_bad_row_is_named_and_nothing_from_the_file_is_kept(migrated, tmp_path, monkeypatch, corrupt, problem):
    _, _, sessions = migrated
    monkeypatch.setattr("jobs.import_csv.BATCH_ROWS", 500)  # several batches: bad rows in later ones too
    good = _slice(BINANCE_CSV, 6_000, 200)
    _write(good, tmp_path / "good.csv")
    import_csv(services_for(migrated), tmp_path / "good.csv", MARKET)
    bad = corrupt(_slice(BINANCE_CSV, 5_000, 2_000).reset_index(drop=True))
    _write(bad, tmp_path / "bad.csv")
    with pytest.raises(CsvError, match=problem):
        import_csv(services_for(migrated), tmp_path / "bad.csv", MARKET)
    with sessions() as s:
        assert s.scalar(sa.text("SELECT COUNT(*) FROM candles")) == 200  # first rows of the bad file too
        last = s.execute(sa.text("SELECT status, message FROM job_runs ORDER BY id DESC")).first()
    assert last.status == "failed" and problem.split(":")[0] in last.message


def test_cli_import_reports_the_bad_line_and_exits_non_zero(sqlite_url, tmp_path):
    env = {"FORECASTER_DATABASE_URL": sqlite_url}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    (tmp_path / "wrong.csv").write_text("time,o,h,l,c,v\n1,2,3,4,5,6\n")
    result = run_cli("import-csv", str(tmp_path / "wrong.csv"), "--market", "binance:ETH-USDT", env=env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "header is time,o,h,l,c,v" in errors[0]
    whole_year = tmp_path / "binance_2023.csv"  # the plain CSV a user has, not tests/data's .csv.gz
    with gzip.open(BINANCE_CSV, "rb") as src, whole_year.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    ok = run_cli("import-csv", str(whole_year), "--market", "binance:ETH-USDT", env=env)
    assert ok.returncode == 0, ok.stderr
    assert "8759 rows read, 8759 new candles" in ok.stdout


def _good_rows(n: int = 5) -> pd.DataFrame:
    return _slice(UPBIT_CSV, 3_000, n).reset_index(drop=True)  # hours of 2023-05


@pytest.mark.parametrize("bad_ts, problem", [
    ("2031-01-01T00:00:00Z", "line 5: the candle's hour has not closed yet"),
    ("CURRENT_HOUR", "line 5: the candle's hour has not closed yet"),
    ("2023-05-10T01:00:00.250Z", "line 5: ts is not on the hour"),
    ("1683680400250", "line 5: ts is not on the hour"),  # epoch ms: 2023-05-10T01:00:00.250Z
])
def test_a_candle_that_is_not_a_whole_closed_hour_is_refused(migrated, tmp_path, bad_ts, problem):
    _, _, sessions = migrated
    if bad_ts == "CURRENT_HOUR":  # open now: its close is not known yet
        bad_ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:00:00Z")
    rows = _good_rows()
    rows.loc[3, "ts"] = bad_ts
    _write(rows, tmp_path / "bad.csv")
    with pytest.raises(CsvError, match=problem):
        import_csv(services_for(migrated), tmp_path / "bad.csv", parse_market("upbit:ETH-KRW"))
    with sessions() as s:
        assert s.scalar(sa.text("SELECT COUNT(*) FROM candles")) == 0


HEADER = "ts,open,high,low,close,volume\n"
ROW = "{ts},2500000.0,2510000.0,2490000.0,2505000.0,12.5\n"


@pytest.mark.parametrize("name, text, problem", [
    ("future.csv", HEADER + ROW.format(ts="2023-05-10T00:00:00Z") + ROW.format(ts="2031-01-01T00:00:00Z"),
     "line 3: the candle's hour has not closed yet"),
    ("subsecond.csv", HEADER + ROW.format(ts="2023-05-10T00:00:00Z") + ROW.format(ts="2023-05-10T01:00:00.250Z"),
     "line 3: ts is not on the hour"),
    ("header-only.csv", HEADER, "no data rows, only a header"),
    ("a-directory", None, "is a directory"),
])
def test_the_cli_refuses_future_and_fractional_candles_empty_files_and_directories(sqlite_url, tmp_path, name,
                                                                                   text, problem):
    env = {"FORECASTER_DATABASE_URL": sqlite_url}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    path = tmp_path / name
    if text is None:
        path.mkdir()
    else:
        path.write_text(text)
    result = run_cli("import-csv", str(path), "--market", "upbit:ETH-KRW", env=env)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert len(errors) == 1 and problem in errors[0], result.stderr
    status = run_cli("status", "--json", "--market", "upbit:ETH-KRW", env=env)
    assert '"candles": 0' in status.stdout  # nothing of the file was stored
