"""The Grafana dashboard of the deploy stack, and its SQL as Grafana's Postgres data source sends it."""
from __future__ import annotations

import re
from datetime import timedelta

from tests.helpers.paths import REPO
from tests.helpers.pipeline_database import NEWEST

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "forecaster.json"
# The dashboard's default range (now-7d to now+1d) on a store of history imported up to NEWEST
# (the pipeline's data), where "now" is long after its last candle.
AROUND_NEWEST = (NEWEST - timedelta(days=7), NEWEST + timedelta(days=1))


def expand(sql: str, variables: dict[str, str], time_range=AROUND_NEWEST) -> str:
    """Grafana's macros and variables as its Postgres data source expands them, for a time range."""
    start, end = (t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in time_range)
    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 BETWEEN '{start}' AND '{end}'", sql)
    sql = sql.replace("$__timeFrom()", f"'{start}'").replace("$__timeTo()", f"'{end}'")
    for name, value in variables.items():
        sql = sql.replace("${%s}" % name, value).replace(f"${name}", value)
    assert "$" not in sql, f"unexpanded macro or variable in {sql}"
    return sql
