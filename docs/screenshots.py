"""The README's screenshots of the daemon's pages, on real candles: the last --days of the
development data set's series (../shared/data, bench/bench_data.py), each re-timed to end at the
last closed hour (so the page shows them as a live store would), imported into a temporary SQLite
file with `forecaster import-csv`; a small model trained with `forecaster train --promote` up to a week
before the end; `forecaster predict --at` over that last week (so past bands have their truth);
then the pages served by the daemon's own HTTP server and photographed by headless Chromium
(tests/helpers/browser.py). One more market is configured and never ingested, as a user who mistypes
one would see it. Writes docs/img/page-overview.png and docs/img/page-market.png (palette PNGs).

    .venv/bin/python docs/screenshots.py [--days 200] [--out docs/img]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import pandas as pd  # noqa: E402

from bench_data import require_csv, shared_data  # noqa: E402

SERIES = {"upbit:ETH-KRW": "upbit_ETHKRW_1h_dev.csv", "binance:ETH-USDT": "binance_ETHUSDT_1h_dev.csv",
          "upbit:BTC-KRW": "upbit_BTCKRW_1h_dev.csv", "upbit:SOL-KRW": "upbit_SOLKRW_1h_dev.csv"}
NEVER_INGESTED = "bithumb:XRP-KRW"
SMALL_MODEL = {"hidden_size": 16, "max_epochs": 4}
MARKET_SHOWN = "upbit:ETH-KRW"


def cli(env: dict, *args: str) -> None:
    exe = Path(sys.executable).parent / "forecaster"
    done = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"forecaster {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def retimed_csv(source: Path, days: int, end: datetime, out: Path) -> Path:
    frame = pd.read_csv(source).tail(days * 24).reset_index(drop=True)
    ts = pd.to_datetime(frame["ts"], utc=True)
    frame["ts"] = (ts + (pd.Timestamp(end) - ts.iloc[-1])).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.to_csv(out, index=False)
    return out


def shrink_png(path: Path) -> int:
    """A 256-colour palette PNG: the pages are flat colours, and this keeps each under 200 KB."""
    from PIL import Image
    with Image.open(path) as img:
        img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path.stat().st_size


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=200)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = ap.parse_args(argv)
    from tests.helpers.browser import find_browser
    found = find_browser()
    if isinstance(found, str):
        sys.exit(f"screenshots.py: {found}")
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        url = f"sqlite:///{tmp / 'forecaster.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTER_")}
        env.update({"FORECASTER_DATABASE_URL": url, "FORECASTER_DEVICE": "cpu",
                    "FORECASTER_MODEL_OVERRIDES": json.dumps(SMALL_MODEL),
                    "FORECASTER_MARKETS": ",".join([*SERIES, NEVER_INGESTED])})
        cli(env, "db", "upgrade")
        for market, name in SERIES.items():
            csv = retimed_csv(require_csv(shared_data() / name, "--days "), args.days, end, tmp / name)
            cli(env, "import-csv", "--market", market, str(csv))
            week = end - timedelta(days=7)
            cli(env, "train", "--market", market, "--until", f"{week:%Y-%m-%dT%H:%MZ}", "--promote")
            cli(env, "predict", "--market", market, "--at", f"{week:%Y-%m-%dT%H:%MZ}..{end:%Y-%m-%dT%H:%MZ}")
            print(f"{market}: imported, trained, forecast", flush=True)
        shots = serve_and_shoot(url, found, args.out)
    for shot in shots:
        print(f"{shot}: {shrink_png(shot) / 1024:.0f} KB")
    return 0


def serve_and_shoot(url: str, found: tuple[str, str], out: Path) -> list[Path]:
    from db.engine import make_engine, make_session_factory
    from exchanges.base import parse_market
    from daemon.health_server import HealthServer
    from daemon.metrics import Metrics
    from daemon.state import DaemonState
    from reports.web.pages import Pages
    from tests.helpers.browser import console_errors, full_page_screenshot, start_chromium
    markets = [parse_market(m) for m in [*SERIES, NEVER_INGESTED]]
    engine = make_engine(url)
    state = DaemonState.for_markets(markets, 3)
    server = HealthServer(state, Metrics(state), 0, pages=Pages(make_session_factory(engine), markets)).start()
    driver = start_chromium(*found, width=1200, height=700)
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    try:
        for path, name in (("/", "page-overview.png"), (f"/market/{MARKET_SHOWN}?tz=local", "page-market.png")):
            driver.get(f"http://127.0.0.1:{server.port}{path}")
            errors = console_errors(driver)
            if errors:
                sys.exit(f"{path}: the browser logged errors: {errors}")
            shots.append(full_page_screenshot(driver, out / name))
    finally:
        driver.quit()
        server.close()
        engine.dispose()
    return shots


if __name__ == "__main__":
    sys.exit(main())
