"""The dashboard's job-runs panel against a real Prometheus scraping the worker's /metrics: one
series per job (with the label `job`, Prometheus' own scrape-job label won and merged ingest,
train and predict into one). Skipped where the prometheus binary is missing (Debian: apt-get
install prometheus)."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from daemon.health_server import HealthServer
from daemon.metrics import Metrics
from daemon.state import DaemonState
from exchanges.base import parse_market
from tests.helpers.paths import REPO

PROMETHEUS = shutil.which("prometheus")
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "forecaster.json"
pytestmark = [pytest.mark.prometheus,
              pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus binary is not installed "
                                 "(Debian: apt-get install prometheus)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["data"]["result"]


def test_the_job_runs_panel_gives_one_series_per_job(tmp_path):
    markets = [parse_market("bithumb:ETH-KRW"), parse_market("upbit:ETH-KRW@1d")]
    metrics = Metrics(DaemonState.for_markets(markets, max_lag_hours=3))
    for job in ("ingest", "train", "predict"):
        metrics.job_done(job, markets[0], "ok", 0.5)
    metrics.job_done("ingest", markets[1], "failed", 0.1)
    server = HealthServer(DaemonState.for_markets(markets, 3), metrics, port=0).start()
    web = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: forecaster-worker\n"
                      f"    static_configs: [{{targets: ['127.0.0.1:{server.port}']}}]\n")
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{web}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        panel = next(p for p in json.loads(DASHBOARD.read_text())["panels"] if p["title"].startswith("Worker: job runs"))
        # Grafana formats a multi-select for Prometheus as a regex alternation.
        expr = panel["targets"][0]["expr"].replace("$market", "(bithumb:ETH-KRW|upbit:ETH-KRW@1d)")
        deadline, series = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            try:
                series = _query(web, expr)  # as the panel sends it
            except OSError:  # not listening yet
                series = []
            if len(series) >= 4:
                break
            time.sleep(0.5)
        got = sorted((s["metric"]["job_name"], s["metric"]["status"]) for s in series)
        assert got == [("ingest", "failed"), ("ingest", "ok"), ("predict", "ok"), ("train", "ok")]
        # Prometheus' own `job` is the scrape job's name: grouping by it would merge them all.
        assert {s["metric"]["job"] for s in _query(web, "forecaster_job_runs_total")} == {"forecaster-worker"}
        lag = _query(web, 'forecaster_candle_lag_hours{market="upbit:ETH-KRW@1d"}')
        assert lag and lag[0]["value"][1] == "+Inf"  # never ingested: infinitely late, from the start
    finally:
        prom.terminate()
        prom.wait(10)
        server.close()
