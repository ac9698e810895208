"""`forecaster plot` on real data: only its kinds, a zone for the time axis, and a title whose
figures are the backtest's own for the same origins."""
from __future__ import annotations

import pandas as pd
import pytest

from exchanges.base import parse_market
from forecaster.config import ModelConfig
from jobs.backtest import backtest_market
from jobs.bootstrap import bootstrap
from jobs.figures import accuracy_line
from jobs.import_csv import import_csv
from reports.plot import plot_market
from jobs.predict_at import predict_at
from jobs.settings import load_settings
from jobs.train import train_market
from tests.helpers.paths import BINANCE_CSV

MARKET = parse_market("binance:ETH-USDT")
TINY = ModelConfig(lookback=48, hidden_size=8, max_epochs=2, val_steps=200, patience=1)


@pytest.fixture
def services(sqlite_url, tmp_path):
    from db.migrate import upgrade
    svc = bootstrap(load_settings(database_url=sqlite_url, device="cpu"))
    upgrade(svc.engine)
    pd.read_csv(BINANCE_CSV).tail(1_400).to_csv(tmp_path / "binance.csv", index=False)
    import_csv(svc, tmp_path / "binance.csv", MARKET)
    yield svc
    svc.close()


def test_the_backtest_chart_title_has_the_backtest_figures_of_the_same_origins(services, tmp_path):
    outcome = backtest_market(services, MARKET, days=3, step=24, retrain_every=168, train_hours=1_000,
                              horizon=24, config=TINY)
    chart = plot_market(services, MARKET, tmp_path / "bt.png", days=5, kind="backtest")
    assert chart.path.stat().st_size > 10_000
    assert chart.figures["n"] == outcome.summary.figures["n"] == 3 * 24
    for k in ("mae", "naive_mae", "rmae", "coverage", "interval_score"):
        assert chart.figures[k] == pytest.approx(outcome.summary.figures[k], rel=1e-12), k
    line = accuracy_line(outcome.summary.figures)
    assert line in chart.title and f"all horizons: {line}" in outcome.report()
    assert "3 origins" in chart.title and "UTC" in chart.title
    assert chart.legend_over_plot_px == 0


def test_the_live_chart_of_hundreds_of_hourly_origins_and_a_time_zone(services, tmp_path):
    trained = train_market(services, MARKET, train_hours=1_000, config=TINY,
                           until=pd.Timestamp("2023-12-15T00:00Z").to_pydatetime())
    predict_at(services, MARKET, pd.Timestamp("2023-12-15T00:00Z").to_pydatetime(),
               pd.Timestamp("2023-12-31T23:00Z").to_pydatetime())
    chart = plot_market(services, MARKET, tmp_path / "live.png", days=14, tz="Asia/Seoul")
    assert "337 origins" in chart.title and f"{chart.figures['n']} scored" in chart.title
    # The title reads in the axis' zone (Seoul is UTC+9), and the legend never covers the data.
    assert "2023-12-18 08:00..2024-01-01 08:00 Asia/Seoul" in chart.title and "UTC" not in chart.title
    assert chart.legend_over_plot_px == 0
    assert chart.path.stat().st_size > 10_000 and trained.status == "trained"
    with pytest.raises(ValueError, match="not one of live, backtest"):
        plot_market(services, MARKET, tmp_path / "x.png", kind="forecast")
