"""The Prometheus alert rules (deploy/prometheus/rules) are valid, fire when they should (promtool's
own unit tests: a market that never ingested, a lagging daily market, a band too narrow or too
wide), read only series the worker exports, and the worker exports them from the start: a lag
series for every configured market (+Inf before its first candle) and each market's live coverage."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from daemon.metrics import Metrics
from daemon.state import DaemonState
from exchanges.base import parse_market
from tests.helpers.paths import REPO
from tests.helpers.interval_store import KEYS, store  # noqa: F401 (a fixture: one market in 1h, 4h and 1d)

RULES = REPO / "deploy" / "prometheus" / "rules"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed "
                                    "(Debian: apt-get install prometheus; .ci/run installs it)")


@pytest.mark.prometheus
@needs_promtool
def test_the_rule_file_is_valid():
    done = subprocess.run([PROMTOOL, "check", "rules", str(RULES / "forecaster.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 3 rules found" in done.stdout


@pytest.mark.prometheus
@needs_promtool
def test_the_rules_fire_as_their_unit_tests_say():
    done = subprocess.run([PROMTOOL, "test", "rules", "forecaster_test.yml"], cwd=RULES, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_market_that_never_ingested_is_infinitely_late_from_the_start():
    markets = [parse_market("upbit:NOPE-KRW"), parse_market("binance:ETH-USDT@1d")]
    text = Metrics(DaemonState.for_markets(markets, max_lag_hours=3)).render().decode()
    for m in markets:
        assert f'forecaster_candle_lag_hours{{market="{m}"}} +Inf' in text


def test_the_rules_read_only_series_the_worker_exports(store):  # noqa: F811
    engine, _ = store
    from db.engine import make_session_factory
    markets = [parse_market(k) for k in KEYS.values()]
    state = DaemonState.for_markets(markets, max_lag_hours=3)
    for m in markets:
        state.refresh(make_session_factory(engine), m)
    metrics = Metrics(state)
    metrics.job_done("ingest", markets[0], "ok", 0.2)
    text = metrics.render().decode()
    exported = set(re.findall(r"^(forecaster_\w+?)(?:\{| )", text, re.M))
    rules = [r for g in yaml.safe_load((RULES / "forecaster.yml").read_text())["groups"] for r in g["rules"]]
    wanted = {n for r in rules for n in re.findall(r"\bforecaster_\w+", r["expr"])}
    assert wanted and wanted <= exported, wanted - exported
    # Live coverage per market, each interval on its own (the store's forecasts are naive with a
    # +-3% band: the figures are what accuracy_7d says for that market alone).
    for key in KEYS.values():
        coverage = re.search(rf'^forecaster_band_coverage_7d{{market="{re.escape(key)}"}} (\S+)$', text, re.M)
        n = re.search(rf'^forecaster_band_coverage_7d_forecasts{{market="{re.escape(key)}"}} (\S+)$', text, re.M)
        assert coverage and n and 0 <= float(coverage.group(1)) <= 1 and float(n.group(1)) > 0, key
    # The job label survives Prometheus: `job` would be renamed exported_job on the way in.
    assert 'forecaster_job_runs_total{job_name="ingest",' in text and "{job=" not in text
