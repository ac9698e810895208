"""Headless Chromium from the system's packages (Debian: `chromium`, `chromium-driver`) driven by
Selenium, with nothing downloaded: the driver and the browser are given by path, so Selenium Manager
has nothing to look up, and it is told to stay offline besides."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, or why a browser test cannot run here."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    browser = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        return ("headless Chromium is not installed: apt-get install chromium chromium-driver "
                "(.ci/run installs them)")
    return browser, driver


def start_chromium(browser: str, driver: str, *, width: int = 1280, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never reach the network
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars", "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def console_errors(driver) -> list[str]:
    """Messages the page logged at SEVERE level (script errors, failed loads) since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def full_page_screenshot(driver, path: Path) -> Path:
    """The whole page, not only the window (Chrome DevTools' captureBeyondViewport)."""
    import base64
    width, height = driver.execute_script(
        "const d = document.documentElement; return [d.scrollWidth, Math.min(d.scrollHeight, 4000)]")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
