"""Stream events other than records, yielded only with `events=True`.

Gaps are not events: a `gap` record is a record (`ssmd.model.Gap`) and is always
yielded — it is the venue-side truth that data is missing. These events describe the
connection itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Subscribed:
    """The gateway granted the subscription (possibly narrowed to the entitlements)."""

    feed: str
    types: tuple[str, ...]
    symbols: tuple[str, ...]
    entitled_symbols: tuple[str, ...]
    narrowed: bool
    from_ns: int | None


@dataclass(frozen=True)
class Live:
    """The replay from `from` is done; what follows is live. `replayed` records were
    sent by the server (before client-side de-duplication)."""

    replayed: int


@dataclass(frozen=True)
class BookUnknown:
    """No trustworthy current book for `symbol` (after a gap, or none cached yet)."""

    symbol: str
    reason: str


@dataclass(frozen=True)
class Reconnecting:
    """The connection dropped; the client reconnects after `delay` s and resumes from
    `resume_from` (ns, ts_recv), dropping records it has already yielded."""

    attempt: int
    delay: float
    reason: str
    resume_from: int | None


Event = Subscribed | Live | BookUnknown | Reconnecting
