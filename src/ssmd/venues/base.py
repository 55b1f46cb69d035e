"""The contract every venue module keeps, so one connector runtime drives them all.

A venue module is pure: no sockets, no files, no clocks. The connector runtime
(`ssmd.capture`) owns I/O; it asks the module what to send, hands it every frame it
receives together with the receive time, and acts on the resync decisions it returns.

Every module in the registry (`ssmd.venues.registry.venue_module(name)`) exposes:

    INFO: VenueInfo
        Its registry entry (name, venue id, channels, limits, URLs, heartbeat interval).

    normalizer(symbols: Mapping[str, SymbolInfo] | None = None, feed: str = "") -> Normalizer
        A fresh, stateful normalizer for ONE connection (books, sequence trackers).
        `symbols` maps venue symbols to the secmaster's names and iids.

    subscribe(channels: Sequence[str], venue_symbols: Sequence[str],
              depth: int | None = None) -> list[str]
        Text frames to send, in order, to subscribe `channels` (names from
        INFO.channels) for `venue_symbols`; split to honour the venue's per-message
        limit. ValueError on an unknown channel, an unsupported depth, no symbols, or
        more symbols than one connection may carry (the runtime shards before that).
        `depth` is the book depth where the venue lets us choose (None: module default).

    unsubscribe(channels: Sequence[str], venue_symbols: Sequence[str],
                depth: int | None = None) -> list[str]
        The frames undoing `subscribe`. Kalshi unsubscribes by server subscription id,
        which only its normalizer knows: its module function takes `sids=` as well, and
        its resync decisions carry ready-made frames (below).

    heartbeat() -> str | None
        The application-level ping frame to send every INFO.heartbeat_interval_s
        seconds, or None when the venue has none (WebSocket ping/pong only).

    instruments_url() -> str
        The REST URL of the venue's reference data (first page where it pages).

    parse_instruments(body: bytes | str) -> list[Instrument]
        That body as instruments for the secmaster. Raises ValueError on a bad body.

    snapshot_url(venue_symbol: str, depth: int | None = None) -> str | None
        The REST URL of a book snapshot the stream needs (Binance), or None when the
        stream carries its own snapshots (every other venue here).

    next_page(url: str, body: bytes) -> str | None   (optional)
        The URL of the reference data's next page after `body` (fetched from `url`), or
        None after the last; absent means the reference data is one page. Pure.

    venue_symbol(instrument: str) -> str   (optional)
        The venue's symbol for an instrument as a definition may write it, where the two
        differ (sim accepts 'BTC-USD' for the wire's 'BTC/USD'); absent means identity.
        The secmaster keys instruments by the venue's symbol (`registry.wire_symbol`).

The runtime's loop: send `subscribe(...)` frames after connecting; pass every received
frame to `normalizer.on_frame(payload, ts_recv)` and publish what it returns; after each
frame call `take_resyncs()` and act on every `Resync`:

* `refetch_snapshot`: GET `snapshot_url(sym, depth)` for each symbol and hand the body to
  `normalizer.on_rest(url, body, ts_recv)`. Binance asks for this when a symbol's first
  diff arrives (so the snapshot postdates the buffered diffs, as Binance prescribes) and
  after a broken update-id chain.
* `resubscribe`: send `resync.frames` if the normalizer supplied them, else
  `unsubscribe(...)` then `subscribe(...)` for those symbols; the fresh snapshot heals it.
* `reconnect`: drop the connection and start over.

Until a book is resynced the normalizer suppresses its records, so nothing known to be
wrong is ever published. `normalizer.on_rest` also accepts `instruments_url()` bodies
where a venue's normalizer uses them (Kraken v2 checksum precision).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ssmd.model.instrument import Instrument
from ssmd.model.records import Record

ResyncAction = Literal["resubscribe", "refetch_snapshot", "reconnect"]


@dataclass(frozen=True)
class SymbolInfo:
    """What the secmaster says about one venue symbol."""

    symbol: str
    iid: int = 0


@dataclass(frozen=True)
class Resync:
    """What the runtime must do to get a trustworthy book back."""

    action: ResyncAction
    venue_symbols: tuple[str, ...]
    reason: str
    frames: tuple[str, ...] = ()
    """Frames to send instead of unsubscribe+subscribe, when only the normalizer's state
    can say what they are (Kalshi: the broken subscription's id)."""


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

    def on_frames(self, frames: Sequence[tuple[bytes, int, int]]) -> list[list[Record]]:
        """`on_frame` for each (payload, ts_recv, mono) read in one go: each one's records."""
        ...

    def on_rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        """Feed a REST response the stream depends on (e.g. a Binance depth snapshot)."""
        ...

    pending_resyncs: list[Resync]
    """Resync decisions not yet taken: empty on almost every frame, so the runtime looks
    here before it calls `take_resyncs`."""

    def take_resyncs(self) -> list[Resync]:
        """Resync decisions produced since the last call (the runtime acts on them)."""
        ...

    def set_iids(self, iids: Mapping[str, int]) -> None:
        """The secmaster's iids by venue symbol: records carry them from now on."""
        ...


@dataclass(frozen=True)
class VenueInfo:
    """Static facts about a venue protocol that validation, sharding and the runtime need."""

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
    heartbeat_interval_s: float = 0.0
    """How often to send `heartbeat()` (0: the venue needs no application ping)."""


class VenueModule(Protocol):
    """The module-level contract above, as a type (modules satisfy it structurally)."""

    INFO: VenueInfo

    def normalizer(
        self, symbols: Mapping[str, SymbolInfo] | None = None, feed: str = ""
    ) -> Normalizer: ...

    def subscribe(
        self, channels: Sequence[str], venue_symbols: Sequence[str], depth: int | None = None
    ) -> list[str]: ...

    def unsubscribe(
        self, channels: Sequence[str], venue_symbols: Sequence[str], depth: int | None = None
    ) -> list[str]: ...

    def heartbeat(self) -> str | None: ...

    def instruments_url(self) -> str: ...

    def parse_instruments(self, body: bytes | str) -> list[Instrument]: ...

    def snapshot_url(self, venue_symbol: str, depth: int | None = None) -> str | None: ...


CONTRACT = (
    "INFO",
    "normalizer",
    "subscribe",
    "unsubscribe",
    "heartbeat",
    "instruments_url",
    "parse_instruments",
    "snapshot_url",
)
"""The names every venue module defines."""

__all__ = [
    "CONTRACT",
    "Instrument",
    "IntegrityStats",
    "Normalizer",
    "Resync",
    "ResyncAction",
    "SymbolInfo",
    "VenueInfo",
    "VenueModule",
]
