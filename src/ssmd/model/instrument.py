"""An instrument as reference data describes it, before the secmaster gives it an iid."""

from __future__ import annotations

import msgspec

from ssmd.model.records import InstrumentKind


class Instrument(msgspec.Struct, kw_only=True, frozen=True):
    venue: str
    venue_symbol: str
    symbol: str
    kind: InstrumentKind
    base: str = ""
    quote: str = ""
    tick_size: int = 0
    """Price increment, fixed-point (0 if the venue does not say)."""
    lot_size: int = 0
    """Size increment, fixed-point (0 if the venue does not say)."""
    status: str = "open"
    expiry_ns: int = 0
    """Expiry / close time for futures and event contracts, ns; 0 for none."""
    settlement: str = ""
    """Settlement result for event contracts once known (e.g. 'yes', 'no')."""
    extra: dict[str, str] = {}
    """Venue-specific reference fields worth keeping (strings), e.g. Kraken pair_decimals."""
