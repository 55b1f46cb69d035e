"""The `sim` venue: Kraken WS v2 spoken by ssmd's own replay server in synthetic mode.

Offline and deterministic (seeded), it is the default venue of environments/dev.yaml.
Composition, not a copy: the wire builders and the normalizer are `kraken_v2`'s; this
module maps ssmd channel names (quote -> ticker), normalized symbols (BTC-USD ->
BTC/USD), and stamps records with venue "sim". Start a server with
`ssmd replay-server --synthetic sim --symbols BTC-USD,ETH-USD --seed 1`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ssmd.model.instrument import Instrument
from ssmd.venues import kraken_common
from ssmd.venues.base import Resync, SymbolInfo
from ssmd.venues.kraken_common import parse_asset_pairs
from ssmd.venues.kraken_v2 import CHANNELS as V2_CHANNELS
from ssmd.venues.kraken_v2 import NATIVE as NATIVE
from ssmd.venues.kraken_v2 import KrakenV2Normalizer
from ssmd.venues.registry import VENUES

INFO = VENUES["sim"]
VENUE = "sim"
CHANNELS = {"trade": "trade", "quote": "ticker", "ticker": "ticker", "book": "book",
            "instrument": "instrument"}  # fmt: skip
"""ssmd channel -> Kraken v2 channel."""
ASSET_PAIRS_PATH = "/0/public/AssetPairs"

__all__ = [
    "INFO",
    "SimNormalizer",
    "heartbeat",
    "instruments_url",
    "normalizer",
    "parse_instruments",
    "snapshot_url",
    "subscribe",
    "unsubscribe",
    "venue_symbol",
]


def venue_symbol(symbol: str) -> str:
    """'BTC-USD' -> 'BTC/USD' (the wire name); wire names pass through."""
    return symbol.upper().replace("-", "/")


def _channels(channels: Sequence[str]) -> list[str]:
    out = []
    for ch in channels:
        if ch not in CHANNELS:
            raise ValueError(f"unknown sim channel {ch!r}; known: {sorted(CHANNELS)}")
        out.append(CHANNELS[ch])
    return list(dict.fromkeys(out))


def _frames(
    method: str, channels: Sequence[str], venue_symbols: Sequence[str], depth: int | None,
    req_id: int,
) -> list[str]:  # fmt: skip
    def build(channel: str, d: int | None, symbols: list[str], n: int) -> dict[str, Any]:
        params: dict[str, Any] = {"channel": channel, "symbol": symbols}
        if d is not None:
            params["depth"] = d
        return {"method": method, "params": params, "req_id": req_id + n}

    symbols = [venue_symbol(s) for s in venue_symbols]
    return kraken_common.subscription_frames(
        INFO, V2_CHANNELS, _channels(channels), symbols, depth, 10, build
    )


def subscribe(
    channels: Sequence[str], venue_symbols: Sequence[str], depth: int | None = None,
    req_id: int = 1,
) -> list[str]:  # fmt: skip
    """Kraken v2 subscribe frames (ssmd channel names, normalized or wire symbols)."""
    return _frames("subscribe", channels, venue_symbols, depth, req_id)


def unsubscribe(
    channels: Sequence[str], venue_symbols: Sequence[str], depth: int | None = None,
    req_id: int = 1,
) -> list[str]:  # fmt: skip
    return _frames("unsubscribe", channels, venue_symbols, depth, req_id)


def heartbeat() -> None:
    """None: the replay server sends `{"channel":"heartbeat"}` every second on its own."""
    return None


def instruments_url() -> str:
    """Relative to the replay server's `rest_url` (its port is chosen at start-up)."""
    return f"{INFO.rest_url}{ASSET_PAIRS_PATH}"


def parse_instruments(body: bytes | str) -> list[Instrument]:
    return [_sim_instrument(i) for i in parse_asset_pairs(body)]


def _sim_instrument(ins: Instrument) -> Instrument:
    return msgspec.structs.replace(ins, venue=VENUE)


def snapshot_url(venue_symbol: str, depth: int | None = None) -> None:
    """None: the book channel sends its own snapshot."""
    return None


class SimNormalizer(KrakenV2Normalizer):
    """Kraken v2 normalization; records say venue 'sim', and resync decisions name
    instruments as the definition does (BTC-USD), not as the wire does (BTC/USD); so
    do the iids the runtime hands in."""

    venue = VENUE

    def take_resyncs(self) -> list[Resync]:
        taken = super().take_resyncs()
        if not taken:
            return taken
        return [
            dataclasses.replace(
                r, venue_symbols=tuple(s.replace("/", "-") for s in r.venue_symbols)
            )
            for r in taken
        ]

    def set_iids(self, iids: Mapping[str, int]) -> None:
        super().set_iids({venue_symbol(s): iid for s, iid in iids.items()})


def normalizer(symbols: Mapping[str, SymbolInfo] | None = None, feed: str = "") -> SimNormalizer:
    return SimNormalizer(symbols, feed)


Normalizer = SimNormalizer
