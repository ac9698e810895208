"""A market key (core.market.Market) as the columns every market table stores it in: the one
place that unpacks it for a query."""
from __future__ import annotations

from core.market import Market


def market_filter(table, market: Market) -> tuple:
    """The WHERE terms that select `market`'s rows of an ORM `table` (candles, model_runs, ...)."""
    return (table.exchange == market.exchange, table.symbol == market.symbol, table.interval == market.interval)


def market_columns(market: Market) -> dict[str, str]:
    """`market` as column values: for a new row, or as the bound parameters of a text query
    (`:exchange`, `:symbol`, `:interval`)."""
    return {"exchange": market.exchange, "symbol": market.symbol, "interval": market.interval}


def market_of(row) -> Market:
    """The key of a row (or result row) with exchange, symbol and interval columns."""
    return Market.from_columns(row.exchange, row.symbol, row.interval)
