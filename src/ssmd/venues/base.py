"""The contract every venue adapter module keeps.

A venue module is pure: no sockets, no files, no clocks. The connector runtime
(`ssmd.capture`) owns I/O; it asks the module what to send, hands it every frame it
receives together with the receive time, and acts on the resync decisions it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from ssmd.model.instrument import Instrument
from ssmd.model.records import Record


@dataclass(frozen=True)
class SymbolInfo:
    """What the secmaster says about one venue symbol."""

    symbol: str
    iid: int = 0


@dataclass(frozen=True)
class Resync:
    """What the runtime must do to get a trustworthy book back."""

    action: Literal["resubscribe", "refetch_snapshot", "reconnect"]
    venue_symbols: tuple[str, ...]
    reason: str


@dataclass
class IntegrityStats:
    """Counters a normalizer keeps; `ssmd venue verify` prints them."""

    frames: int = 0
    checksums_verified: int = 0
    checksums_failed: int = 0
    sequence_gaps: int = 0
    crossed: int = 0
    parse_errors: int = 0
    records: dict[str, int] = field(default_factory=dict)


class Normalizer(Protocol):
    """Stateful per connection: owns the books and sequence trackers of that connection."""

    stats: IntegrityStats

    def on_frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        """Parse one received frame. Never raises: a bad frame yields a `gap(reason=parse)`."""
        ...

    def on_rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        """Feed a REST response the stream depends on (e.g. a Binance depth snapshot)."""
        ...

    def take_resyncs(self) -> list[Resync]:
        """Resync decisions produced since the last call (the runtime acts on them)."""
        ...


@dataclass(frozen=True)
class VenueInfo:
    """Static facts about a venue protocol that validation and sharding need."""

    name: str
    """Registry id, e.g. 'kraken-v2'."""
    venue: str
    """Venue id carried in records, e.g. 'kraken'."""
    module: str
    """Dotted module path of the adapter."""
    channels: tuple[str, ...]
    max_instruments_per_connection: int
    max_symbols_per_message: int
    ws_url: str
    rest_url: str = ""
    description: str = ""


def symbol_of(mapping: dict[str, SymbolInfo], venue_symbol: str, default: str) -> SymbolInfo:
    """The secmaster's answer for a venue symbol, or the venue's default normalization."""
    found = mapping.get(venue_symbol)
    return found if found is not None else SymbolInfo(default)


__all__ = [
    "Instrument",
    "IntegrityStats",
    "Normalizer",
    "Resync",
    "SymbolInfo",
    "VenueInfo",
    "symbol_of",
]
