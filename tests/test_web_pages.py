"""The daemon's pages without a browser, on SQLite and Postgres: what a user reads on `/` and on a
market page, keys from the URL refused without a query, every stored text escaped."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import func, select

from daemon.health_server import HealthServer
from daemon.metrics import Metrics
from daemon.state import DaemonState
from db.models import Candle, JobRun, ModelRun, Prediction
from exchanges.base import parse_market
from reports.web.pages import Pages

KRW = parse_market("bithumb:ETH-KRW")
USDT = parse_market("binance:ETH-USDT")
NEVER = parse_market("upbit:XRP-KRW@4h")
EVIL = "<script>alert('x')</script> & \"quoted\""


def _hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def _seed(sessions, now: datetime) -> datetime:
    """48 hourly candles of bithumb:ETH-KRW ending 2 hours before the last closed one, a promoted
    model, a live forecast from its newest candle and one from 3 hours before (scored); a failed
    ingest of upbit:XRP-KRW@4h whose message holds markup, and no candles for it."""
    newest = _hour(now) - timedelta(hours=3)  # the last closed hour is now-1h: a lag of 2 candles
    with sessions.begin() as s:
        for i in range(48):
            t = newest - timedelta(hours=47 - i)
            close = 3_456_000.0 + 1000 * i
            s.add(Candle(exchange="bithumb", symbol="ETH-KRW", interval="1h", open_time=t, open=close, high=close + 500,
                         low=close - 500, close=close, volume=1.0, source="test", ingested_at=now))
        s.add(ModelRun(exchange="bithumb", symbol="ETH-KRW", interval="1h", status="promoted", started_at=now,
                       finished_at=now, band_source="empirical at h1-24", val_interval_score=12_000.0,
                       val_free_interval_score=13_000.0))
        s.flush()
        for origin in (newest - timedelta(hours=3), newest):
            base = 3_456_000.0 + 1000 * (47 - (newest - origin) // timedelta(hours=1))
            for h in (1, 2, 24):
                s.add(Prediction(model_run_id=1, exchange="bithumb", symbol="ETH-KRW", interval="1h", kind="live",
                                 origin_time=origin, target_time=origin + timedelta(hours=h), horizon=h,
                                 yhat=base + 100, yhat_lower=base - 20_000, yhat_upper=base + 20_000, created_at=now))
        s.add(JobRun(job="ingest", exchange="bithumb", symbol="ETH-KRW", interval="1h", started_at=now,
                     finished_at=now, status="ok", rows=1))
        s.add(JobRun(job="ingest", exchange="upbit", symbol="XRP-KRW", interval="4h", started_at=now,
                     finished_at=now, status="failed", message=EVIL))
    return newest


@pytest.fixture
def pages(migrated):
    _url, _engine, sessions = migrated
    now = datetime.now(timezone.utc)
    newest = _seed(sessions, now)
    return Pages(sessions, [KRW, USDT, NEVER]), sessions, newest


def test_overview_shows_every_market_its_lag_prices_grouped_and_faults_in_words(pages):
    p, _sessions, newest = pages
    page = p.answer("/")
    html = page.body.decode()
    assert page.status == 200 and page.content_type.startswith("text/html")
    for market in (KRW, USDT, NEVER):
        assert f'data-market="{market}"' in html
    assert 'data-lag="2">2 hours behind' in html
    assert "3,503,000 KRW" in html  # the newest close, grouped, in its quote currency
    assert "coverage 100% (80% wanted)" in html  # the scored forecasts of the last week
    assert "empirical at h1-24" in html  # the band the promoted model serves
    # binance:ETH-USDT: nothing ran, nothing stored; upbit:XRP-KRW@4h: its ingest failed.
    assert "never ingested (no ingest has run yet)" in html
    assert "never ingested; the last ingest failed" in html


def test_stored_text_is_escaped_everywhere(pages):
    p, _s, _n = pages
    for path in ("/", f"/market/{NEVER}", "/?tz=local"):
        html = p.answer(path).body.decode()
        assert "<script" not in html
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in html


def test_market_page_chart_and_time_zones(pages):
    p, _s, newest = pages
    utc = p.answer("/market/bithumb:ETH-KRW").body.decode()
    assert '<polygon class="band"' in utc and 'circle class="actual hit"' in utc
    assert f"{newest:%Y-%m-%d %H:%M} UTC" in utc
    kst = p.answer("/market/Bithumb:eth-krw?tz=local").body.decode()  # the one key parser: any case
    assert f"{newest + timedelta(hours=9):%Y-%m-%d %H:%M} KST" in kst
    never = p.answer(f"/market/{NEVER}".replace("@", "%40"))
    assert never.status == 200 and "has never ingested" in never.body.decode()


@pytest.mark.parametrize("key", ["nosuch:ETH-KRW", "bithumb:ETH-KRW'; DROP TABLE candles;--", "bithumb",
                                 "upbit:BTC-KRW", "bithumb:ETH-KRW@7m", "%3Cscript%3E"])
def test_a_key_that_is_not_a_served_market_is_a_404_page_and_no_query(pages, key, monkeypatch):
    p, sessions, _n = pages
    opened = []
    monkeypatch.setattr(p, "sessions", lambda: opened.append(1) or sessions())
    page = p.answer(f"/market/{key}")
    assert page.status == 404 and "Not found" in page.body.decode() and "<script>" not in page.body.decode()
    assert opened == []  # no database session for a key the parser or the market list refused
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Candle)) == 48


def test_pages_are_served_beside_healthz_and_metrics(pages):
    p, _s, _n = pages
    state = DaemonState.for_markets([KRW], 3)
    server = HealthServer(state, Metrics(state), 0, pages=p).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        root = requests.get(base + "/", timeout=10)
        assert root.status_code == 200 and root.headers["Content-Type"] == "text/html; charset=utf-8"
        assert requests.get(base + "/market/nosuch:X-Y", timeout=10).status_code == 404
        assert requests.get(base + "/healthz", timeout=10).status_code == 503
        assert requests.get(base + "/metrics", timeout=10).status_code == 200
        assert requests.get(base + "/nothing", timeout=10).status_code == 404
    finally:
        server.close()


def test_the_week_figures_follow_each_new_candle(pages):
    p, sessions, newest = pages
    assert "over 2 forecasts" in p.answer("/").body.decode()
    close = 3_503_000.0  # inside the newest origin's 1-step band: a hit
    with sessions.begin() as s:
        s.add(Candle(exchange="bithumb", symbol="ETH-KRW", interval="1h", open_time=newest + timedelta(hours=1),
                     open=close, high=close, low=close, close=close, volume=1.0, source="test", ingested_at=newest))
    html = p.answer("/").body.decode()
    assert "coverage 100% (80% wanted)" in html and "over 3 forecasts" in html
