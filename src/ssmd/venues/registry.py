"""Every venue protocol ssmd speaks, with the limits validation and sharding rely on.

Limits come from each venue's published API documentation (see docs/venues/);
where a venue publishes none we pick a conservative figure and say so there.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ssmd.venues.base import VenueInfo

VENUES: dict[str, VenueInfo] = {
    info.name: info
    for info in (
        VenueInfo(
            name="sim",
            venue="sim",
            module="ssmd.venues.sim",
            channels=("trade", "quote", "book"),
            max_instruments_per_connection=1000,
            max_symbols_per_message=1000,
            ws_url="ws://127.0.0.1:0/sim",
            description="ssmd's own replay server (synthetic mode): offline, deterministic",
        ),
        VenueInfo(
            name="kraken-v1",
            venue="kraken",
            module="ssmd.venues.kraken_v1",
            channels=("book", "trade", "ticker"),
            max_instruments_per_connection=100,
            max_symbols_per_message=50,
            ws_url="wss://ws.kraken.com",
            rest_url="https://api.kraken.com/0/public",
            description="Kraken spot WebSocket v1 (legacy; the fixture recordings)",
            heartbeat_interval_s=30.0,
        ),
        VenueInfo(
            name="kraken-v2",
            venue="kraken",
            module="ssmd.venues.kraken_v2",
            channels=("book", "trade", "ticker"),
            max_instruments_per_connection=100,
            max_symbols_per_message=50,
            ws_url="wss://ws.kraken.com/v2",
            rest_url="https://api.kraken.com/0/public",
            description="Kraken spot WebSocket v2",
            heartbeat_interval_s=30.0,
        ),
        VenueInfo(
            name="coinbase-exchange",
            venue="coinbase",
            module="ssmd.venues.coinbase_exchange",
            channels=("level2", "ticker", "matches"),
            max_instruments_per_connection=100,
            max_symbols_per_message=100,
            ws_url="wss://ws-feed.exchange.coinbase.com",
            rest_url="https://api.exchange.coinbase.com",
            description="Coinbase Exchange (ex-Pro) feed",
        ),
        VenueInfo(
            name="coinbase-advanced",
            venue="coinbase",
            module="ssmd.venues.coinbase_advanced",
            channels=("level2", "market_trades", "ticker", "heartbeats"),
            max_instruments_per_connection=100,
            max_symbols_per_message=100,
            ws_url="wss://advanced-trade-ws.coinbase.com",
            rest_url="https://api.coinbase.com/api/v3/brokerage",
            description="Coinbase Advanced Trade market data",
        ),
        VenueInfo(
            name="binance",
            venue="binance",
            module="ssmd.venues.binance",
            channels=("depth", "bookTicker", "trade", "aggTrade"),
            max_instruments_per_connection=256,
            max_symbols_per_message=200,
            ws_url="wss://stream.binance.com:9443/ws",
            rest_url="https://api.binance.com/api/v3",
            description="Binance spot (1024 streams per connection; 4 channels per symbol)",
        ),
        VenueInfo(
            name="kalshi",
            venue="kalshi",
            module="ssmd.venues.kalshi",
            channels=("orderbook_delta", "trade", "ticker", "market_lifecycle"),
            max_instruments_per_connection=500,
            max_symbols_per_message=100,
            ws_url="wss://api.elections.kalshi.com/trade-api/ws/v2",
            rest_url="https://api.elections.kalshi.com/trade-api/v2",
            description="Kalshi event contracts",
        ),
        VenueInfo(
            name="polymarket",
            venue="polymarket",
            module="ssmd.venues.polymarket",
            channels=("market",),
            max_instruments_per_connection=500,
            max_symbols_per_message=500,
            ws_url="wss://ws-subscriptions-clob.polymarket.com/ws/market",
            rest_url="https://clob.polymarket.com",
            description="Polymarket CLOB market channel",
            heartbeat_interval_s=10.0,
        ),
    )
}


def venue_info(name: str) -> VenueInfo:
    """Look up a venue protocol; KeyError lists the known ones."""
    try:
        return VENUES[name]
    except KeyError:
        raise KeyError(f"unknown venue {name!r}; known: {', '.join(sorted(VENUES))}") from None


def venue_module(name: str) -> ModuleType:
    """The adapter module of a venue protocol: it keeps the contract in `venues/base.py`."""
    return importlib.import_module(venue_info(name).module)


def wire_symbol(name: str, instrument: str) -> str:
    """The venue's own symbol for an instrument as a definition lists it: identity, except
    for a venue whose module defines `venue_symbol` (sim: 'BTC-USD' -> 'BTC/USD')."""
    convert = getattr(venue_module(name), "venue_symbol", None)
    return instrument if convert is None else convert(instrument)
