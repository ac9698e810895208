"""The database password never appears in anything the service prints or stores, whichever way it
is given: in the URL's userinfo, as `?password=` (issue 20: the daemon's start line printed that
one in clear), or as `?sslpassword=` beside a `passfile`. Every output is searched for it: the
daemon's log (at DEBUG), `status` and `status --json`, `error:` lines, /healthz, /metrics and
every column of every job_runs row."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from db.redact import forget_secrets, mask_secrets, mask_url, remember_secrets_of
from tests.helpers.cli import run_cli
from tests.helpers.daemon_harness import MarketFeed, as_utc, daemon_env, newest_live_origin, start_daemon  # noqa: F401
from tests.helpers.fake_exchange import FakeExchange

MARKET = "bithumb:ETH-KRW"
PASSWORD = "Pw-7q9Zx@k2/s"  # '@' and '/' as passwords have them: the URL carries it percent-encoded
ENCODED = quote(PASSWORD, safe="")
FORMS = {
    "userinfo": lambda base, tmp: base.replace("postgres@", f"postgres:{ENCODED}@", 1),
    "password parameter": lambda base, tmp: f"{base}?password={ENCODED}",
    "sslpassword and passfile": lambda base, tmp: f"{base}?sslpassword={ENCODED}&passfile={tmp / 'pgpass'}",
}


def _leaks(text: str) -> bool:
    return PASSWORD in text or ENCODED in text or "Pw-7q9Zx" in text


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("form", FORMS)
def test_the_password_appears_in_no_output(pg_url, tmp_path, start_daemon, form):
    (tmp_path / "pgpass").write_text(f"127.0.0.1:5432:*:postgres:{PASSWORD}\n")
    (tmp_path / "pgpass").chmod(0o600)
    url = FORMS[form](pg_url, tmp_path)
    outputs: dict[str, str] = {}

    def cli(name, *args, **env):
        done = run_cli(*args, env={"FORECASTER_DATABASE_URL": url, **env}, timeout=120, cwd=tmp_path)
        outputs[name] = done.stdout + done.stderr
        return done

    assert cli("db upgrade", "db", "upgrade").returncode == 0, outputs["db upgrade"]
    assert "database postgresql+psycopg://postgres" in outputs["db upgrade"]
    (tmp_path / "bad.csv").write_text("ts,open,high,low,close,volume\n1738800000,1,2,0.5,1e308,1\n")
    assert cli("import error", "import-csv", str(tmp_path / "bad.csv"), "-m", MARKET).returncode == 1
    unreachable = url.replace("127.0.0.1:5432", "127.0.0.1:1")
    done = run_cli("status", env={"FORECASTER_DATABASE_URL": unreachable}, cwd=tmp_path)
    outputs["database down"] = done.stderr
    assert done.returncode == 1 and done.stderr.startswith("error: database:")
    outputs["bad setting"] = cli("bad setting", "status", FORECASTER_MARKETS="kraken:X-Y").stderr

    with FakeExchange() as fake:
        feed = MarketFeed(fake, MARKET, hours=700, held_back=0)
        env = daemon_env(url, fake, [MARKET], log_level="DEBUG", backfill_days=20)
        daemon = start_daemon(env)
        engine = sa.create_engine(url)
        try:
            daemon.wait_for(lambda: as_utc(newest_live_origin(engine, MARKET)) == feed.newest,
                            "the first live forecast", timeout=120)
            outputs["/healthz"] = daemon.get("/healthz").text
            outputs["/metrics"] = daemon.get("/metrics").text
            outputs["status"] = cli("status", "status").stdout
            outputs["status --json"] = cli("status --json", "status", "--json").stdout
            assert json.loads(outputs["status --json"])["database"].startswith("postgresql+psycopg://postgres")
            daemon.terminate()
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT * FROM job_runs")).fetchall()
            outputs["job_runs"] = "\n".join(map(str, rows))
        finally:
            engine.dispose()
    outputs["daemon log"] = daemon.log()
    assert "daemon" in outputs["daemon log"] and "serving" in outputs["daemon log"]
    assert any("failed" in str(r) for r in rows) and len(rows) >= 3
    leaked = [name for name, text in outputs.items() if _leaks(text)]
    assert not leaked, {name: outputs[name][:2000] for name in leaked}


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://svc:pw1234@h:5433/kd", "postgresql+psycopg://svc:***@h:5433/kd"),
    ("postgresql+psycopg://svc@h:5433/kd?password=pw1234&sslmode=disable",
     "postgresql+psycopg://svc@h:5433/kd?password=***&sslmode=disable"),
    ("postgresql+psycopg://svc@h/kd?sslpassword=pw1234&passfile=/etc/pw&application_name=x",
     "postgresql+psycopg://svc@h/kd?sslpassword=***&passfile=***&application_name=x"),
    ("postgresql+psycopg://svc:pa/ss@h/kd", "postgresql+psycopg://svc:***@h/kd"),
    ("https://api.example.com/v1?apiKey=pw1234&limit=5", "https://api.example.com/v1?apiKey=***&limit=5"),
    ("sqlite:///forecaster.db", "sqlite:///forecaster.db"),
])
def test_a_url_is_shown_without_its_secrets(url, shown):
    assert mask_url(url) == shown
    assert mask_secrets(f"error: could not reach {url} (got '{url}')") == f"error: could not reach {shown} (got '{shown}')"


def test_a_remembered_password_is_masked_wherever_it_appears():
    """A driver may quote the password outside any URL (a libpq conninfo string, a message)."""
    try:
        remember_secrets_of("postgresql+psycopg://svc@h/kd?password=s3cr%40t-pw")
        line = "connection failed: host=h password = s3cr@t-pw, dsn s3cr%40t-pw"
        assert mask_secrets(line) == "connection failed: host=h password = ***, dsn ***"
    finally:
        forget_secrets()
