"""Where the tests' data is: tests/data, inside the repository (its README says what and from where)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # tests/helpers/paths.py -> the repository
TEST_DATA = REPO / "tests" / "data"
API_SAMPLES = TEST_DATA / "api_samples"
BINANCE_CSV = TEST_DATA / "binance_ETHUSDT_1h_2023.csv.gz"
UPBIT_CSV = TEST_DATA / "upbit_ETHKRW_1h_2023.csv.gz"
UPBIT_COINS = ("ETH", "BTC", "XRP", "SOL", "DOGE", "LINK")


def upbit_csv(coin: str) -> Path:
    """The real 2023 Upbit <coin>/KRW series, e.g. upbit_csv("DOGE")."""
    if coin not in UPBIT_COINS:
        raise ValueError(f"no Upbit {coin}/KRW series in tests/data; there are {', '.join(UPBIT_COINS)}")
    return TEST_DATA / f"upbit_{coin}KRW_1h_2023.csv.gz"
