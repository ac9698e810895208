"""Where the real data of ../shared/data is (FORECASTER_SHARED_DATA overrides it)."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FORECASTER_SHARED_DATA", REPO.parent / "shared" / "data"))
BINANCE_CSV = SHARED_DATA / "binance_ETHUSDT_1h_dev.csv"
UPBIT_CSV = SHARED_DATA / "upbit_ETHKRW_1h_dev.csv"
