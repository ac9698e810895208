"""The daemon's pages in a real browser: headless Chromium from the system's packages, driven by
Selenium, against `forecaster run` on the test exchange. Skipped, with the reason, where Chromium,
its driver or Selenium is missing (.ci/run installs them)."""
from __future__ import annotations

import struct
from urllib.parse import quote

import pytest

from db.engine import make_engine
from db.migrate import upgrade
from tests.helpers.browser import console_errors, find_browser, full_page_screenshot, start_chromium
from tests.helpers.daemon_harness import (MarketFeed, as_utc, daemon_env, newest_live_origin, scalar,  # noqa: F401
                                          start_daemon)
from tests.helpers.fake_exchange import FakeExchange

pytestmark = [pytest.mark.slow, pytest.mark.browser]
KRW, USDT, NEVER = "bithumb:ETH-KRW", "binance:ETH-USDT", "upbit:XRP-KRW@4h"
FOUND = find_browser()
By = pytest.importorskip("selenium.webdriver.common.by",
                         reason="selenium is not installed (pip install -e '.[test]')").By


@pytest.fixture
def browser():
    if isinstance(FOUND, str):
        pytest.skip(FOUND)
    driver = start_chromium(*FOUND)
    yield driver
    driver.quit()


def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _open(driver, daemon, path: str, shot) -> None:
    driver.set_window_size(1280, 900)
    driver.get(f"http://127.0.0.1:{daemon.port}{path}")
    assert console_errors(driver) == [], path
    full_page_screenshot(driver, shot)
    width, height = _png_size(shot)
    assert width == 1280 and height >= 300 and shot.stat().st_size > 10_000, (shot, width, height)


def test_pages_in_a_browser_show_lag_chart_hits_and_a_market_that_never_ingested(sqlite_url, start_daemon,
                                                                                     browser, tmp_path):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with FakeExchange() as fake:
        feeds = {KRW: MarketFeed(fake, KRW, hours=700, held_back=4), USDT: MarketFeed(fake, USDT, hours=700, held_back=0)}
        fake.fail_next("garbage", times=1_000_000, path_contains="minutes/240")  # XRP's 4h candles: never
        daemon = start_daemon(daemon_env(sqlite_url, fake, [KRW, USDT, NEVER], backfill_days=20))
        for market, feed in feeds.items():
            daemon.wait_for(lambda: as_utc(newest_live_origin(engine, market)) == feed.newest,
                            f"the first live forecast of {market}", timeout=120)
        # Four more hours, each forecast: the 1-step bands of four origins get their truth.
        for _ in range(4):
            newest = feeds[KRW].release(1)
            daemon.wait_for(lambda: as_utc(newest_live_origin(engine, KRW)) == newest, f"a forecast from {newest}",
                            timeout=60)
        daemon.wait_for(lambda: scalar(engine, "SELECT count(*) FROM job_runs WHERE symbol = 'XRP-KRW' "
                                               "AND status = 'failed'"), "a failed ingest of XRP-KRW")

        _open(browser, daemon, "/", tmp_path / "overview.png")
        lags = daemon.get("/healthz").json()["markets"]
        rows = {r.get_attribute("data-market"): r for r in browser.find_elements(By.CSS_SELECTOR, "tr.market")}
        assert sorted(rows) == sorted([KRW, USDT, NEVER])
        for market in (KRW, USDT):
            shown = rows[market].find_element(By.CSS_SELECTOR, ".lag").get_attribute("data-lag")
            assert int(shown) == lags[market]["lag_steps"] == 0, (market, shown, lags[market])
        assert "never ingested" in rows[NEVER].text and "failed" in rows[NEVER].text

        rows[KRW].find_element(By.LINK_TEXT, KRW).click()  # the link a user follows
        assert console_errors(browser) == []
        _open(browser, daemon, f"/market/{KRW}", tmp_path / "market.png")
        chart = browser.find_element(By.CSS_SELECTOR, "svg.chart")
        band = chart.find_element(By.CSS_SELECTOR, "polygon.band")
        assert band.size["height"] > 5 and band.size["width"] > 5  # drawn, not only present
        assert len(chart.find_elements(By.CSS_SELECTOR, "circle.actual.hit")) >= 1
        assert len(chart.find_elements(By.CSS_SELECTOR, "polyline.closes")) == 1

        _open(browser, daemon, f"/market/{quote(NEVER)}?tz=local", tmp_path / "never.png")
        error = browser.find_element(By.CSS_SELECTOR, "p.error").text
        assert f"{NEVER} has never ingested" in error and "failed" in error
        assert browser.find_elements(By.CSS_SELECTOR, "svg.chart") == []
        daemon.terminate()
    engine.dispose()
