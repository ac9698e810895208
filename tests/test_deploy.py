"""The docker compose stack, checked without Docker: the compose file, the Dockerfile, .env.example
and the Grafana provisioning agree with the code, and every dashboard query runs on the real
Postgres as the read-only role, on data made by the real pipeline, and returns rows."""
from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import psycopg
import pytest
import yaml

from tests.cli import run_cli
from tests.conftest import REPO
from tests.test_readonly_role import run_script
from tests.test_sql_docs import NEWEST, bi_database

COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "forecaster.json"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "forecaster.yaml"
DASHBOARD_PROVIDERS = REPO / "deploy" / "grafana" / "provisioning" / "dashboards" / "forecaster.yaml"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
OURS = ("migrate", "worker")  # the services that run the forecaster image
VARIABLE_RE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


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
    from jobs.settings import ENV_PREFIX, Settings
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def test_four_services_in_order_with_volume_healthchecks_and_restart_policy():
    c = compose()
    services = c["services"]
    assert set(services) == {"postgres", "migrate", "worker", "grafana"}
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
            monkeypatch.setenv(key, interpolate(value, env))
        settings = load_settings()
        assert settings.database_url.startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in settings.database_url and env["POSTGRES_PASSWORD"] in settings.database_url
        assert settings.http_port == int(env["FORECASTER_HTTP_PORT"])
    # .env.example offers only settings that exist, besides the stack's own variables.
    stack = {k for k in env if not k.startswith("FORECASTER_")}
    assert set(env) - stack <= known
    assert stack == {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_PORT", "BI_USER",
                     "BI_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "GRAFANA_PORT", "TORCH_INDEX_URL"}


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
    for package in {p.split(".")[0] for p in project["tool"]["setuptools"]["packages"]}:
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
    source = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
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
    assert {r["uid"] for r in refs} == {source["uid"]} and {r["type"] for r in refs} == {source["type"]}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in dashboard["panels"])


# --- the dashboard's SQL on real data, as Grafana runs it ----------------------------------------

@pytest.fixture(scope="module")
def pipeline_pg(request, tmp_path_factory):
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


def expand(sql: str, variables: dict[str, str]) -> str:
    """Grafana's macros and variables as its Postgres data source expands them, for a time range
    of a week before the newest candle to a day after it (the dashboard's default range)."""
    start, end = ((NEWEST + d).strftime("%Y-%m-%dT%H:%M:%SZ") for d in (-timedelta(days=7), timedelta(days=1)))
    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 BETWEEN '{start}' AND '{end}'", sql)
    sql = sql.replace("$__timeFrom()", f"'{start}'").replace("$__timeTo()", f"'{end}'")
    for name, value in variables.items():
        sql = sql.replace("${%s}" % name, value).replace(f"${name}", value)
    assert "$" not in sql, f"unexpanded macro or variable in {sql}"
    return sql


def run_as_bi(bi_dsn, sql: str) -> tuple[list[str], list[tuple]]:
    dsn, role = bi_dsn
    with psycopg.connect(dsn, user=role, password="pw") as conn:
        cur = conn.execute(sql)
        return [d.name for d in cur.description], cur.fetchall()


def test_every_dashboard_query_returns_rows_as_the_read_only_role(bi_dsn):
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    _, markets = run_as_bi(bi_dsn, variables["market"]["query"])
    assert [m for (m,) in markets] == ["binance:ETH-USDT", "upbit:ETH-KRW"]
    kinds = [o["value"] for o in variables["kind"]["options"]]
    assert kinds == ["live", "backtest"] and variables["kind"]["current"]["value"] == "live"
    ran = 0
    for kind in kinds:
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                sql = expand(target["rawSql"], {"market": "binance:ETH-USDT", "kind": kind})
                columns, rows = run_as_bi(bi_dsn, sql)
                assert rows, f"panel {panel['title']!r} ({target['refId']}, {kind}) returned no rows"
                if target["format"] == "time_series":
                    assert columns[0] == "time" and all(r[0].utcoffset() == timedelta(0) for r in rows)
                ran += 1
    assert ran == 2 * sum(len(p["targets"]) for p in dashboard["panels"])


def test_the_forecast_panel_draws_the_band_from_the_last_close(bi_dsn):
    panel = next(p for p in json.loads(DASHBOARD.read_text())["panels"] if "band" in p["title"])
    forecast = next(t for t in panel["targets"] if "latest_forecast" in t["rawSql"])
    columns, rows = run_as_bi(bi_dsn, expand(forecast["rawSql"], {"market": "binance:ETH-USDT"}))
    assert columns == ["time", "forecast", "band 10%", "band 90%"]
    assert len(rows) == 25 and rows[0][0] == NEWEST.to_pydatetime()  # the origin, then 24 hours
    assert rows[0][1] == rows[0][2] == rows[0][3]
    assert all(lo <= mid <= hi for _, mid, lo, hi in rows)
