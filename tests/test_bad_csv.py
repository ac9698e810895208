"""Bad CSV files, as users have them, through the real `forecaster import-csv`: each is refused
with one `error:` line naming the line and the problem and nothing written, or read right (the
dates stored are the ones the file means). Issue 20's audit found 34 of 40 refused: epoch seconds
were stored as 1970 milliseconds, a candle of 1900 and prices of 1e308 were accepted."""
from __future__ import annotations

import gzip
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.paths import UPBIT_CSV

HEADER = "ts,open,high,low,close,volume\n"


def row(ts="2023-05-10T00:00:00Z", o="2500000", h="2510000", lo="2490000", c="2505000", v="12.5") -> str:
    return f"{ts},{o},{h},{lo},{c},{v}\n"


GOOD = row() + row(ts="2023-05-10T01:00:00Z")
# An hour that has not closed however long the table takes: the one after the hour now open.
NEXT_HOUR = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:00:00Z")

# (name, file text (or None for the special files below), market, what must happen): a string is
# the problem the one error line names; a list is the open times (UTC) that must be stored.
CASES = [
    # the file itself
    ("wrong header", "time,o,h,l,c,v\n" + row(), "upbit:ETH-KRW", "header is time,o,h,l,c,v"),
    ("no volume column", "ts,open,high,low,close\n2023-05-10T00:00:00Z,1,2,0.5,1.5\n", "upbit:ETH-KRW",
     "header is ts,open,high,low,close;"),
    ("columns swapped", "ts,open,low,high,close,volume\n" + row(), "upbit:ETH-KRW", "header is ts,open,low,high"),
    ("no header", GOOD, "upbit:ETH-KRW", "header is 2023-05-10T00:00:00Z"),
    ("semicolons", HEADER.replace(",", ";") + row().replace(",", ";"), "upbit:ETH-KRW", "header is ts;open"),
    ("tabs", HEADER.replace(",", "\t") + row().replace(",", "\t"), "upbit:ETH-KRW", "header is ts\topen"),
    ("header only", HEADER, "upbit:ETH-KRW", "no data rows, only a header"),
    ("empty file", "", "upbit:ETH-KRW", "not a readable CSV"),
    ("a directory", None, "upbit:ETH-KRW", "is a directory"),
    ("no such file", None, "upbit:ETH-KRW", "no such file"),
    ("gzip named .csv", None, "upbit:ETH-KRW", "not a readable CSV"),
    ("a row with a field too many", HEADER + row() + row(ts="2023-05-10T01:00:00Z").replace("\n", ",7\n"),
     "upbit:ETH-KRW", "Expected 6 fields in line 3, saw 7"),
    ("every row with a field too many", HEADER + row().replace("\n", ",7\n"), "upbit:ETH-KRW",
     "Expected 6 fields in line 2, saw 7"),
    ("a short row", HEADER + "2023-05-10T00:00:00Z,1,2,0.5\n", "upbit:ETH-KRW", "line 2: a price or volume is not a number"),
    ("a 100 KB field", HEADER + row(c="9" * 100_000), "upbit:ETH-KRW", "line 2: a price or volume is not a number"),
    # timestamps
    ("ts a word", HEADER + row(ts="yesterday"), "upbit:ETH-KRW", "line 2: ts is not ISO-8601 UTC"),
    ("ts empty", HEADER + row(ts=""), "upbit:ETH-KRW", "line 2: ts is not ISO-8601 UTC"),
    ("ts month 13", HEADER + row(ts="2023-13-01T00:00:00Z"), "upbit:ETH-KRW", "line 2: ts is not ISO-8601 UTC"),
    ("ts negative epoch", HEADER + row(ts="-1738800000"), "upbit:ETH-KRW", "line 2: ts is not ISO-8601 UTC"),
    ("ts decimal epoch", HEADER + row(ts="1738800000.5"), "upbit:ETH-KRW", "line 2: ts is not ISO-8601 UTC"),
    ("ts 1900", HEADER + row(ts="1900-01-01T00:00:00Z"), "upbit:ETH-KRW", "line 2: the candle opens before 2009"),
    ("ts 1970 as ms would read it", HEADER + row(ts="1970-01-21T03:00:00Z"), "upbit:ETH-KRW",
     "line 2: the candle opens before 2009"),
    ("ts epoch 0", HEADER + row(ts="0"), "upbit:ETH-KRW", "before 2009 (a number, read as epoch seconds)"),
    ("ts 9-digit seconds (1973)", HEADER + row(ts="123456789"), "upbit:ETH-KRW",
     "line 2: the candle opens before 2009 (a number, read as epoch seconds)"),
    ("ts 12-digit ms (1973)", HEADER + row(ts="123456789000"), "upbit:ETH-KRW",
     "line 2: the candle opens before 2009 (a number, read as epoch milliseconds)"),
    ("ts microseconds", HEADER + row(ts="1683676800000000"), "upbit:ETH-KRW", "line 2: ts is a number too large"),
    ("ts nanoseconds", HEADER + row(ts="1683676800000000000"), "upbit:ETH-KRW", "line 2: ts is a number too large"),
    ("ts in 2031", HEADER + row() + row(ts="2031-01-01T00:00:00Z"), "upbit:ETH-KRW",
     "line 3: the candle's hour has not closed yet"),
    ("ts next hour", HEADER + row(ts=NEXT_HOUR), "upbit:ETH-KRW", "line 2: the candle's hour has not closed yet"),
    ("ts half past", HEADER + row(ts="2023-05-10T00:30:00Z"), "upbit:ETH-KRW", "line 2: ts is not on the hour"),
    ("ts with a fraction", HEADER + row(ts="2023-05-10T01:00:00.250Z"), "upbit:ETH-KRW", "line 2: ts is not on the hour"),
    ("ts ms off the hour", HEADER + row(ts="1683680400250"), "upbit:ETH-KRW", "line 2: ts is not on the hour"),
    ("ts seconds off the hour", HEADER + row(ts="1683680430"), "upbit:ETH-KRW", "line 2: ts is not on the hour"),
    ("ts twice", HEADER + row() + row(), "upbit:ETH-KRW", "line 3: ts appears twice"),
    ("ts twice, as text and as ms", HEADER + row() + row(ts="1683676800000"), "upbit:ETH-KRW", "line 3: ts appears twice"),
    ("a day candle off its exchange's day", HEADER + row(ts="2023-05-10T00:00:00Z"), "bithumb:ETH-KRW@1d",
     "line 2: ts is not on the 1d grid"),
    # prices and volumes
    ("close a word", HEADER + row(c="abc"), "upbit:ETH-KRW", "line 2: a price or volume is not a number"),
    ("open empty", HEADER + row(o=""), "upbit:ETH-KRW", "line 2: a price or volume is not a number"),
    ("price NaN", HEADER + row(lo="NaN"), "upbit:ETH-KRW", "line 2: a price or volume is not a number"),
    ("thousands separators", HEADER + '2023-05-10T00:00:00Z,"2,500,000","2,510,000","2,490,000","2,505,000",12.5\n',
     "upbit:ETH-KRW", "line 2: a price or volume is not a number"),
    ("volume inf", HEADER + row(v="inf"), "upbit:ETH-KRW", "line 2: a value is not finite"),
    ("prices 1e309 (inf)", HEADER + row(o="1e309", h="1e309", lo="1e309", c="1e309"), "upbit:ETH-KRW",
     "line 2: a value is not finite"),
    ("prices 1e308", HEADER + row() + row(ts="2023-05-10T01:00:00Z", o="1e308", h="1e308", lo="1e308", c="1e308"),
     "upbit:ETH-KRW", "line 3: a value is out of range"),
    ("prices 1e-300", HEADER + row(o="1e-300", h="1e-300", lo="1e-300", c="1e-300"), "upbit:ETH-KRW",
     "line 2: a value is out of range"),
    ("volume 1e300", HEADER + row(v="1e300"), "upbit:ETH-KRW", "line 2: a value is out of range"),
    ("price zero", HEADER + row(o="0", lo="0"), "upbit:ETH-KRW", "line 2: a price is not positive"),
    ("price negative", HEADER + row(c="-5"), "upbit:ETH-KRW", "line 2: a price is not positive"),
    ("volume negative", HEADER + row(v="-1"), "upbit:ETH-KRW", "line 2: volume is negative"),
    ("high below low", HEADER + row(h="2480000"), "upbit:ETH-KRW", "line 2: prices break low <= open, close <= high"),
    # files that are odd but mean something definite: read right
    ("epoch seconds (2025-02-06)", HEADER + row(ts="1738800000") + row(ts="1738803600"), "upbit:ETH-KRW",
     ["2025-02-06T00:00:00", "2025-02-06T01:00:00"]),
    ("seconds and ms mixed", HEADER + row(ts="1738800000") + row(ts="1738803600000"), "upbit:ETH-KRW",
     ["2025-02-06T00:00:00", "2025-02-06T01:00:00"]),
    ("a +09:00 offset", HEADER + row(ts="2023-05-10T09:00:00+09:00"), "upbit:ETH-KRW", ["2023-05-10T00:00:00"]),
    ("no zone (read as UTC)", HEADER + row(ts="2023-05-10 00:00:00"), "upbit:ETH-KRW", ["2023-05-10T00:00:00"]),
    ("Excel: a BOM and CRLF", "\ufeff" + (HEADER + GOOD).replace("\n", "\r\n"), "upbit:ETH-KRW",
     ["2023-05-10T00:00:00", "2023-05-10T01:00:00"]),
    ("quoted values and blank lines", HEADER + '"2023-05-10T00:00:00Z","2500000","2510000","2490000","2505000","12.5"\n\n\n',
     "upbit:ETH-KRW", ["2023-05-10T00:00:00"]),
    ("a Bithumb day candle at 15:00 UTC", HEADER + row(ts="2023-05-09T15:00:00Z"), "bithumb:ETH-KRW@1d",
     ["2023-05-09T15:00:00"]),
]


def _make(case, folder):
    name, text, _market, _expected = case
    path = folder / "candles.csv"
    if name == "a directory":
        path.mkdir()
    elif name == "gzip named .csv":
        shutil.copyfile(UPBIT_CSV, path)
    elif name != "no such file":
        path.write_bytes(text.encode())
    return path


def _stored(db) -> tuple[list[str], list[tuple]]:
    with sqlite3.connect(db) as conn:
        times = [t.replace(" ", "T")[:19] for (t,) in conn.execute("SELECT open_time FROM candles ORDER BY open_time")]
        runs = conn.execute("SELECT job, status, message FROM job_runs").fetchall()
    return times, runs


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One migrated SQLite file, copied for each case: every case starts from an empty store."""
    folder = tmp_path_factory.mktemp("template")
    db = folder / "forecaster.db"
    done = run_cli("db", "upgrade", env={"FORECASTER_DATABASE_URL": f"sqlite:///{db}"}, cwd=folder)
    assert done.returncode == 0, done.stderr
    return db


@pytest.fixture(scope="module")
def outcomes(template, tmp_path_factory):
    def run(case):
        folder = tmp_path_factory.mktemp("case")
        db = folder / "forecaster.db"
        shutil.copyfile(template, db)
        path = _make(case, folder)
        result = run_cli("import-csv", str(path), "--market", case[2], env={"FORECASTER_DATABASE_URL": f"sqlite:///{db}"},
                         cwd=folder, timeout=120)
        return result, *_stored(db)
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(run, CASES))


def test_the_table_has_the_audits_40_files():
    assert len(CASES) >= 40


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_a_bad_csv_is_refused_in_one_line_or_read_right(outcomes, index):
    _name, _text, _market, expected = CASES[index]
    result, stored, runs = outcomes[index]
    if isinstance(expected, list):  # read right: exactly these hours, nothing else
        assert result.returncode == 0, result.stderr
        assert stored == expected
        assert [r[1] for r in runs] == ["ok"]
        return
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    assert expected in lines[0], lines[0]
    assert len(lines[0]) < 600, "the line echoes the whole bad input"
    assert stored == []  # nothing from the file is kept
    assert [r[1] for r in runs] == ["failed"] and len(runs[0][2]) <= 400


def test_an_epoch_seconds_file_from_the_real_data_imports_its_own_dates(tmp_path, template):
    """A year of real candles written with epoch seconds, as many tools export them: the stored
    hours are the file's, not 1970's."""
    import pandas as pd
    db = tmp_path / "forecaster.db"
    shutil.copyfile(template, db)
    with gzip.open(UPBIT_CSV, "rt") as f:
        frame = pd.read_csv(f, dtype=str, nrows=500)
    iso = pd.to_datetime(frame.ts, utc=True)
    frame = frame.assign(ts=((iso - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype(str))
    frame.to_csv(tmp_path / "seconds.csv", index=False)
    result = run_cli("import-csv", str(tmp_path / "seconds.csv"), "--market", "upbit:ETH-KRW",
                     env={"FORECASTER_DATABASE_URL": f"sqlite:///{db}"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stored, _ = _stored(db)
    assert stored == [t.strftime("%Y-%m-%dT%H:%M:%S") for t in iso]
