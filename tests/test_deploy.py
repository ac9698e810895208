"""The docker compose stack, checked without Docker: the compose file, the Dockerfile, .env.example,
Prometheus and the Grafana provisioning agree with the code; every dashboard and alert query runs
on the real Postgres as the read-only role, on data made by the real pipeline, and returns rows;
every metric the dashboard and alerts read from Prometheus is one the worker exports."""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import yaml

from tests.helpers.cli import run_cli
from tests.helpers.compose import COMPOSE, compose
from tests.helpers.grafana import AROUND_NEWEST, DASHBOARD, expand
from tests.helpers.paths import REPO
from tests.helpers.pipeline_database import NEWEST, bi_database
from tests.helpers.readonly_role import run_script

DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "forecaster.yaml"
DASHBOARD_PROVIDERS = REPO / "deploy" / "grafana" / "provisioning" / "dashboards" / "forecaster.yaml"
ALERTS = REPO / "deploy" / "grafana" / "provisioning" / "alerting" / "forecaster.yaml"
PROMETHEUS = REPO / "deploy" / "prometheus" / "prometheus.yml"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
OURS = ("migrate", "worker")  # the services that run the forecaster image
VARIABLE_RE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$$`."""
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1) or m.group(4), m.group(2), m.group(3)
        have = env.get(name)
        if op in (":-", "-"):
            return have if have or (op == "-" and have is not None) else arg
        if op in (":?", "?") and not have:
            raise KeyError(f"{name}: {arg}")
        return have or ""
    return VARIABLE_RE.sub(one, str(value))


def filled_env() -> dict[str, str]:
    """.env.example as a user fills it in: every empty value (the secrets) gets one."""
    return {k: v or f"x{uuid.uuid4().hex[:12]}" for k, v in env_example().items()}


def ignore_patterns(name: str) -> list[str]:
    return [line.strip() for line in (REPO / name).read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def settings_variables() -> set[str]:
    from jobs.settings import setting_variables
    return setting_variables()


def test_five_services_in_order_with_volume_healthchecks_and_restart_policy():
    c = compose()
    services = c["services"]
    assert set(services) == {"postgres", "migrate", "worker", "prometheus", "grafana"}
    pg = services["postgres"]
    volume = next(v for v in pg["volumes"] if v.endswith(":/var/lib/postgresql/data"))
    assert volume.split(":")[0] in c["volumes"], "Postgres keeps its data in a named volume"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    worker = services["worker"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["restart"] in ("always", "unless-stopped", "on-failure")
    assert "/healthz" in " ".join(worker["healthcheck"]["test"])
    grafana = services["grafana"]
    assert grafana["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "build" in services["migrate"] and services["migrate"]["image"] == worker["image"]
    prometheus = services["prometheus"]
    assert prometheus["depends_on"]["worker"]["condition"] == "service_started"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_started"
    data = next(v for v in prometheus["volumes"] if v.endswith(":/prometheus"))
    assert data.split(":")[0] in c["volumes"], "Prometheus keeps its data in a named volume"


def test_prometheus_scrapes_the_worker_where_it_listens():
    prometheus = compose()["services"]["prometheus"]
    mounts = dict(reversed(v.rsplit(":", 2)[:2]) for v in prometheus["volumes"] if v.startswith("./"))
    config_file = next(a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file="))
    assert REPO / mounts[config_file].removeprefix("./") == PROMETHEUS
    jobs = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    targets = [t for job in jobs for c in job["static_configs"] for t in c["targets"]]
    assert targets == [f"worker:{env_example()['FORECASTER_HTTP_PORT']}"]
    assert "worker" in compose()["services"]


def test_every_forecaster_service_runs_a_real_forecaster_command():
    services = compose()["services"]
    cmd = re.search(r'^CMD (\[.*\])$', DOCKERFILE.read_text(), re.M)
    commands = [services[name]["command"] for name in OURS] + [json.loads(cmd.group(1))]
    assert [c[1:] for c in commands] == [["db", "upgrade"], ["run"], ["run"]]
    for command in commands:
        assert command[0] == "forecaster"
        result = run_cli(*command[1:], "--help")
        assert result.returncode == 0, f"{command}: {result.stderr}"


def test_compose_sets_only_variables_the_settings_read_and_they_are_valid(monkeypatch):
    from jobs.settings import load_settings
    known, env = settings_variables(), filled_env()
    for name in OURS:
        environment = compose()["services"][name]["environment"]
        assert set(environment) <= known, f"{name} sets {set(environment) - known}, which no setting reads"
        for key, value in environment.items():
            if value is not None:
                monkeypatch.setenv(key, interpolate(value, env))
            elif key in env:  # no value: compose passes on the .env or shell value, if any
                monkeypatch.setenv(key, env[key])
        settings = load_settings()
        assert settings.database_url.startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in settings.database_url and env["POSTGRES_PASSWORD"] in settings.database_url
        assert settings.http_port == int(env["FORECASTER_HTTP_PORT"])
    # .env.example offers only settings that exist, besides the stack's own variables.
    stack = {k for k in env if not k.startswith("FORECASTER_")}
    assert set(env) - stack <= known
    assert stack == {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_PORT", "BI_USER",
                     "BI_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "GRAFANA_PORT", "PROMETHEUS_PORT", "TORCH_INDEX_URL"}


@pytest.mark.parametrize("user_horizon", [None, "12"])
def test_a_daily_market_in_the_compose_stack_keeps_its_interval_s_defaults(monkeypatch, user_horizon):
    """The stack sets no horizon or training window unless the user does: a @1d market forecasts
    7 days (not 24 days, as when compose forced FORECASTER_HORIZON=24 on every interval)."""
    from forecaster.defaults import defaults_for
    from jobs.settings import load_settings
    env = filled_env() | {"FORECASTER_MARKETS": "upbit:ETH-KRW,upbit:ETH-KRW@1d"}
    if user_horizon:
        env["FORECASTER_HORIZON"] = user_horizon
    for key, value in compose()["services"]["worker"]["environment"].items():
        if value is not None:
            monkeypatch.setenv(key, interpolate(value, env))
        elif key in env:
            monkeypatch.setenv(key, env[key])
    settings = load_settings()
    assert [str(m) for m in settings.market_list()] == ["upbit:ETH-KRW", "upbit:ETH-KRW@1d"]
    if user_horizon is None:
        assert (settings.horizon_for("1d"), settings.horizon_for("1h")) == (7, 24)
        assert settings.train_steps_for("1d") == defaults_for("1d").train_steps
        assert settings.train_steps_for("1h") == 4320
    else:  # the user's choice holds for every interval
        assert settings.horizon_for("1d") == settings.horizon_for("1h") == 12


def test_secrets_come_from_env_never_from_the_files():
    text, example = COMPOSE.read_text(), env_example()
    referenced = {m.group(1) or m.group(4) for m in VARIABLE_RE.finditer(text) if m.group(0) != "$$"}
    assert referenced <= set(example), f"{referenced - set(example)} are not in .env.example"
    secrets = {k for k in example if "PASSWORD" in k}
    assert secrets == {"POSTGRES_PASSWORD", "BI_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    assert all(example[k] == "" for k in secrets), ".env.example holds no password"
    for k in secrets:  # required: compose stops with a message while it is empty
        for m in re.finditer(rf"\$\{{{k}(:?[-?])?[^}}]*\}}", text):
            assert m.group(1) == ":?", f"{m.group(0)} must be required, with no default"
    for service in compose()["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${"), f"{key} is written in the compose file"
    assert ".env" in ignore_patterns(".gitignore") and ".env" in ignore_patterns(".dockerignore")
    source = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    assert json.dumps(source).lower().count('password":') == 1  # secureJsonData.password, from the env


def test_dockerfile_installs_cpu_torch_by_default_copies_the_packages_and_runs_as_a_user():
    import tomllib

    from jobs.settings import Settings
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cpu$", text, re.M)
    assert 'pip install --index-url "${TORCH_INDEX_URL}" "torch' in text
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    included = {p.split("*")[0] for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    for package in sorted(p for p in included if (REPO / p).is_dir()):
        assert re.search(rf"^COPY {package} ", text, re.M), f"the image lacks {package}/"
    assert "COPY pyproject.toml README.md" in text
    ignored = ignore_patterns(".dockerignore")
    for copied in re.findall(r"^COPY (\S+)", text, re.M) + ["README.md"]:
        assert copied not in ignored
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert re.search(rf"^EXPOSE {Settings.model_fields['http_port'].default}$", text, re.M)


def test_cpu_torch_by_default_and_the_documented_gpu_setup_reserves_the_gpu():
    import textwrap
    services, doc = compose()["services"], DEPLOY_DOC.read_text()
    default = re.search(r"^ARG TORCH_INDEX_URL=(\S+)$", DOCKERFILE.read_text(), re.M).group(1)
    for name in OURS:  # both build the one image, with the Dockerfile's CPU default unless .env says
        arg = services[name]["build"]["args"]["TORCH_INDEX_URL"]
        assert interpolate(arg, {}) == default == env_example()["TORCH_INDEX_URL"]
    assert re.search(r"^\s*TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cu\d+$", doc, re.M)
    assert re.search(r"^\s*FORECASTER_DEVICE=cuda$", doc, re.M)
    block = re.search(r"```yaml\n\s*# docker-compose\.gpu\.yml\n(.*?)```", doc, re.S)
    override = yaml.safe_load(textwrap.dedent(block.group(1).rstrip(" ")))["services"]
    assert set(override) <= set(services)
    device = override["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "docker compose -f docker-compose.yml -f docker-compose.gpu.yml up" in doc


def test_grafana_provisions_the_read_only_datasource_and_the_dashboard():
    grafana = compose()["services"]["grafana"]
    source, prometheus = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert prometheus["type"] == "prometheus" and prometheus["url"] == "http://prometheus:9090"
    assert source["type"] in ("grafana-postgresql-datasource", "postgres")
    assert source["url"] == "postgres:5432"
    placeholders = {source["user"], source["secureJsonData"]["password"], source["jsonData"]["database"]}
    assert placeholders == {"$BI_USER", "$BI_PASSWORD", "$POSTGRES_DB"}
    for name in ("BI_USER", "BI_PASSWORD", "POSTGRES_DB"):  # the same values Postgres got
        assert grafana["environment"][name] == compose()["services"]["postgres"]["environment"][name]
    mounts = dict(reversed(v.rsplit(":", 2)[:2]) for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"][0]
    assert mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " / ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("forecast and its 80% band", "naive", "coverage", "job runs", "candle lag"):
        assert topic in titles
    refs = [p["datasource"] for p in dashboard["panels"]] + [t["datasource"] for p in dashboard["panels"]
                                                             for t in p["targets"]]
    sources = {source["uid"]: source["type"], prometheus["uid"]: prometheus["type"]}
    assert {r["uid"]: r["type"] for r in refs} == sources
    for panel in dashboard["panels"]:  # a panel reads one data source
        assert {t["datasource"]["uid"] for t in panel["targets"]} == {panel["datasource"]["uid"]}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in dashboard["panels"])


# --- the dashboard's SQL on real data, as Grafana runs it ----------------------------------------

@pytest.fixture(scope="module")
def pipeline_pg(request, tmp_path_factory, pg_server):  # pg_server named: it marks the users `postgres`
    yield from bi_database(request, tmp_path_factory, "postgresql")


@pytest.fixture(scope="module")
def bi_dsn(pipeline_pg):
    """The pipeline database as the read-only role Grafana uses."""
    role = f"bi_{uuid.uuid4().hex[:10]}"
    result = run_script(pipeline_pg.dsn, role, "pw")
    assert result.returncode == 0, result.stderr
    yield pipeline_pg.dsn, role
    with psycopg.connect(pipeline_pg.dsn, autocommit=True) as conn:
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


# The dashboard's default range (now-7d to now+1d) on a live store; on a store of history imported
# up to NEWEST (the pipeline's data), where "now" is long after its last candle, AROUND_NEWEST.
def default_range():
    now = datetime.now(timezone.utc)
    return now - timedelta(days=7), now + timedelta(days=1)


def run_as_bi(bi_dsn, sql: str) -> tuple[list[str], list[tuple]]:
    dsn, role = bi_dsn
    with psycopg.connect(dsn, user=role, password="pw") as conn:
        cur = conn.execute(sql)
        return [d.name for d in cur.description], cur.fetchall()


def dashboard_variables(bi_dsn, market: str, kind: str, time_range=AROUND_NEWEST) -> dict[str, str]:
    """The values Grafana gives the dashboard's variables: the chosen ones, then each query
    variable in order, as the read-only role runs it."""
    # `market` is multi-select: Grafana's SQL data source hands it quoted, as a list of literals.
    values = {"market": f"'{market}'", "kind": kind}
    for variable in json.loads(DASHBOARD.read_text())["templating"]["list"]:
        if variable["name"] not in values:
            _, rows = run_as_bi(bi_dsn, expand(variable["query"], values, time_range))
            assert len(rows) == 1 and rows[0][0], f"variable {variable['name']} has no value"
            values[variable["name"]] = str(rows[0][0])
    return values


def sql_targets(dashboard: dict):
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            if "rawSql" in target:
                yield panel, target


def test_every_dashboard_query_returns_rows_as_the_read_only_role(bi_dsn):
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    _, markets = run_as_bi(bi_dsn, variables["market"]["query"])
    assert [m for (m,) in markets] == ["binance:ETH-USDT", "upbit:ETH-KRW"]
    kinds = [o["value"] for o in variables["kind"]["options"]]
    assert kinds == ["live", "backtest"] and variables["kind"]["current"]["value"] == "live"
    ran = 0
    for kind in kinds:
        values = dashboard_variables(bi_dsn, "binance:ETH-USDT", kind)
        assert values["quote"] == "USDT"
        for panel, target in sql_targets(dashboard):
            columns, rows = run_as_bi(bi_dsn, expand(target["rawSql"], values))
            assert rows, f"panel {panel['title']!r} ({target['refId']}, {kind}) returned no rows"
            if target["format"] == "time_series":
                assert columns[0] == "time" and all(r[0].utcoffset() == timedelta(0) for r in rows)
            ran += 1
    assert ran == 2 * len(list(sql_targets(dashboard)))


def test_the_default_range_shows_the_accuracy_of_an_imported_history(bi_dsn):
    """Opened today on history that ended in 2023, the accuracy panels fall back to the week up to
    the newest scored forecast, and the newest-data panel links to the week of the last candle."""
    dashboard = json.loads(DASHBOARD.read_text())
    values = dashboard_variables(bi_dsn, "binance:ETH-USDT", "live", default_range())
    assert values["window_to"] == NEWEST.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert values["window_from"] == (NEWEST - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for panel, target in sql_targets(dashboard):
        if target["format"] == "table" and "window_" in target["rawSql"]:
            _, rows = run_as_bi(bi_dsn, expand(target["rawSql"], values, default_range()))
            assert rows and rows[0][0] is not None, f"panel {panel['title']!r} is empty in the default range"
    newest = next(p for p in dashboard["panels"] if p["title"].startswith("Newest data"))
    columns, rows = run_as_bi(bi_dsn, expand(newest["targets"][0]["rawSql"], values, default_range()))
    row = dict(zip(columns, rows[0]))
    assert row["newest candle"] == NEWEST.to_pydatetime()
    assert row["to_ms"] - row["from_ms"] == 8 * 24 * 3600 * 1000
    link = json.dumps(newest["fieldConfig"])
    assert "${__data.fields.from_ms}" in link and "${__data.fields.to_ms}" in link


def test_the_forecast_panel_draws_the_chosen_kind_from_the_last_close(bi_dsn):
    panel = next(p for p in json.loads(DASHBOARD.read_text())["panels"] if "band" in p["title"])
    forecast = next(t for t in panel["targets"] if "origin_time" in t["rawSql"])
    for kind, origin in (("live", NEWEST), ("backtest", NEWEST - timedelta(hours=24))):
        values = dashboard_variables(bi_dsn, "binance:ETH-USDT", kind)
        columns, rows = run_as_bi(bi_dsn, expand(forecast["rawSql"], values))
        assert columns == ["time", "forecast", "band 10%", "band 90%"]
        assert len(rows) == 25 and rows[0][0] == origin.to_pydatetime()  # the origin, then 24 hours
        assert rows[0][1] == rows[0][2] == rows[0][3]
        assert all(lo <= mid <= hi for _, mid, lo, hi in rows)


def test_mae_panels_carry_the_quote_currency(bi_dsn):
    dashboard = json.loads(DASHBOARD.read_text())
    for market, quote in (("binance:ETH-USDT", "USDT"), ("upbit:ETH-KRW", "KRW")):
        values = dashboard_variables(bi_dsn, market, "live")
        assert values["quote"] == quote
        in_currency = []
        for panel, target in sql_targets(dashboard):
            columns, _ = run_as_bi(bi_dsn, expand(target["rawSql"], values))
            errors = [c for c in columns if re.search(r"\bMAE\b", c)]  # not rMAE, a ratio
            assert all(c.endswith((f"({quote})", "(%)")) for c in errors), f"{panel['title']}: {errors}"
            in_currency += [c for c in errors if c.endswith(f"({quote})")]
            if re.search(r"\bMAE\b", panel["title"]):
                assert f"$quote" in panel["title"]
        assert len(in_currency) == 2  # model and naive


# --- alerts and the worker's metrics ---------------------------------------------------------------

def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_alert_rules_are_provisioned_for_candle_lag_and_band_coverage():
    grafana = compose()["services"]["grafana"]
    mounts = dict(reversed(v.rsplit(":", 2)[:2]) for v in grafana["volumes"] if v.startswith("./"))
    assert REPO / mounts["/etc/grafana/provisioning"].removeprefix("./") == ALERTS.parent.parent
    sources = {d["uid"] for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]} | {"__expr__"}
    rules = {r["uid"]: r for r in alert_rules()}
    assert set(rules) == {"forecaster-candle-lag", "forecaster-band-coverage"}
    for rule in rules.values():
        refs = {q["refId"]: q for q in rule["data"]}
        assert rule["condition"] in refs and {q["datasourceUid"] for q in rule["data"]} <= sources
        for q in rule["data"]:
            assert q["model"]["refId"] == q["refId"]
            assert q["model"].get("expression", "A") in refs
    threshold = {uid: r["data"][-1]["model"]["conditions"][0]["evaluator"] for uid, r in rules.items()}
    assert threshold["forecaster-candle-lag"] == {"type": "gt", "params": [3]}
    assert threshold["forecaster-band-coverage"] == {"type": "outside_range", "params": [0.7, 0.9]}
    assert rules["forecaster-candle-lag"]["noDataState"] == "Alerting"  # a worker not scraped alerts


def test_the_coverage_alert_query_gives_one_figure_per_market_as_the_read_only_role(bi_dsn):
    rule = next(r for r in alert_rules() if r["uid"] == "forecaster-band-coverage")
    columns, rows = run_as_bi(bi_dsn, rule["data"][0]["model"]["rawSql"])
    assert columns == ["market", "coverage"]  # a label and a value, as Grafana's alerting wants
    assert [m for m, _ in rows] == ["binance:ETH-USDT"]  # Upbit has too few live forecasts yet
    _, truth = run_as_bi(bi_dsn, "SELECT AVG(inside_interval) FROM forecast_accuracy WHERE exchange = 'binance' "
                                 "AND kind = 'live' AND target_time > TIMESTAMPTZ '2023-12-24 23:00:00+00'")
    assert abs(rows[0][1] - float(truth[0][0])) < 1e-9


def test_every_metric_the_dashboard_and_alerts_read_is_one_the_worker_exports(pipeline_pg):
    from db.engine import make_engine, make_session_factory
    from exchanges.base import parse_market
    from daemon.metrics import Metrics
    from daemon.state import DaemonState

    market = parse_market("binance:ETH-USDT")
    engine = make_engine(pipeline_pg.url)
    state = DaemonState.for_markets([market], max_lag_hours=3)
    state.refresh(make_session_factory(engine), market)
    engine.dispose()
    metrics = Metrics(state)
    metrics.job_done("ingest", market, "ok", 0.3)
    exported = set(re.findall(r"^(forecaster_\w+?)(?:\{| )", metrics.render().decode(), re.M))
    wanted = {t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"] if "expr" in t}
    wanted |= {q["model"]["expr"] for r in alert_rules() for q in r["data"] if "expr" in q["model"]}
    names = {n for expr in wanted for n in re.findall(r"\bforecaster_\w+", expr)}
    assert names and names <= exported, f"not exported by the worker: {names - exported}"
    assert all('market=~"$market"' in e for e in wanted if "$market" in e)  # multi-select: a regex
