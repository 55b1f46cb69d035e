"""Normalized records (wire schema v1), exact numbers and time."""

from ssmd.model.fixed import SCALE, from_fixed, to_fixed
from ssmd.model.records import (
    SCHEMA_VERSION,
    Book,
    Gap,
    GapReason,
    InstrumentRecord,
    Level,
    Quote,
    Record,
    Side,
    Status,
    Trade,
)

__all__ = [
    "SCALE",
    "SCHEMA_VERSION",
    "Book",
    "Gap",
    "GapReason",
    "InstrumentRecord",
    "Level",
    "Quote",
    "Record",
    "Side",
    "Status",
    "Trade",
    "from_fixed",
    "to_fixed",
]
