"""Which records one WebSocket subscription may receive: its own filter ∩ entitlements.

Why a separate, pure module: this is the check that guarantees no un-entitled record is
ever delivered. It runs on every record for every subscription, so the per-(type,
symbol) part is decided once and cached; only the time conditions (date window,
rolling lookback, expiry) are evaluated per record. Semantics are exactly those of
`ssmd.meta.clients.entitled` (tested against it): symbol globs match case-insensitively,
an entitlement must hold on every condition, any one entitlement suffices.

Subscription policy (docs/api.md): a request for a feed, record type, literal symbol or
`from` time outside the entitlements is REFUSED with a message naming it; a glob is
NARROWED — accepted, and only the entitled symbols it matches are ever delivered.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ssmd.gateway.protocol import ProtocolError, Subscribe, has_glob
from ssmd.meta.clients import EntitlementSpec
from ssmd.model.records import RECORD_TYPES
from ssmd.model.time import format_ns

STREAM_TYPES: tuple[str, ...] = RECORD_TYPES
_CACHE_LIMIT = 100_000

Window = tuple[int, int, int, int]
"""(from_ns, to_ns, lookback_ns, expires_ns) of one entitlement; open ends are ±2**63."""
_LO, _HI = -(2**63), 2**63
ALWAYS: tuple[Window, ...] = ((_LO, _HI, 0, _HI),)


def _window(ent: EntitlementSpec) -> Window:
    return (
        _LO if ent.date_from_ns is None else ent.date_from_ns,
        _HI if ent.date_to_ns is None else ent.date_to_ns,
        ent.lookback_ns,
        _HI if ent.expires_ns is None else ent.expires_ns,
    )


def _globs(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(p.upper())})" for p in patterns))


def feed_grants(
    entitlements: Iterable[EntitlementSpec], feed: str, now: int
) -> list[EntitlementSpec]:
    """The entitlements that can grant anything on `feed` now."""
    return [
        e
        for e in entitlements
        if ("*" in e.feeds or feed in e.feeds) and (e.expires_ns is None or now < e.expires_ns)
    ]


@dataclass
class Decision:
    types: tuple[str, ...]
    entitled_symbols: tuple[str, ...]
    narrowed: bool


def decide(
    req: Subscribe, entitlements: Iterable[EntitlementSpec], now: int, *, live: bool = True
) -> Decision:
    """Refuse (ProtocolError 'forbidden', saying what) or grant a subscription."""
    grants = feed_grants(entitlements, req.feed, now)
    if not grants:
        raise ProtocolError("forbidden", f"not entitled to feed {req.feed!r}", req.id)
    typed = {
        t: [g for g in grants if not g.record_types or t in g.record_types] for t in STREAM_TYPES
    }
    if req.types is None:
        types = tuple(t for t in STREAM_TYPES if typed[t])
    else:
        missing = [t for t in req.types if not typed[t]]
        if missing:
            raise ProtocolError(
                "forbidden",
                f"not entitled to record type(s) {', '.join(missing)} of feed {req.feed!r}",
                req.id,
            )
        types = req.types
    useful = [g for t in types for g in typed[t]]
    for sym in req.symbols:
        if has_glob(sym):
            continue
        if not any(_globs(g.symbols).fullmatch(sym.upper()) for g in useful):
            raise ProtocolError(
                "forbidden", f"not entitled to symbol {sym!r} on feed {req.feed!r}", req.id
            )
    entitled = tuple(dict.fromkeys(s for g in useful for s in g.symbols))
    if req.from_ns is not None:
        earliest = min(_earliest(g, now) for g in useful)
        if req.from_ns < earliest:
            raise ProtocolError(
                "forbidden",
                f"'from' {format_ns(req.from_ns)} is before your entitlement window, which "
                f"starts at {format_ns(earliest)}",
                req.id,
            )
    if live and not any(_window(g)[1] > now for g in useful):
        raise ProtocolError(
            "forbidden", f"your entitlement window for feed {req.feed!r} has ended", req.id
        )
    upper = {e.upper() for e in entitled}
    narrowed = (req.types is None and len(types) < len(STREAM_TYPES)) or (
        "*" not in upper and any(has_glob(s) and s.upper() not in upper for s in req.symbols)
    )
    return Decision(types, entitled, narrowed)


def _earliest(ent: EntitlementSpec, now: int) -> int:
    lo = _LO if ent.date_from_ns is None else ent.date_from_ns
    if ent.lookback_ns:
        lo = max(lo, now - ent.lookback_ns)
    return lo


class Matcher:
    """Per-record check of one subscription: filter and entitlements, cached per key."""

    def __init__(
        self,
        feed: str,
        types: Iterable[str],
        symbols: Iterable[str],
        entitlements: Iterable[EntitlementSpec],
        now: int,
    ) -> None:
        self.feed = feed
        self.types = frozenset(types)
        self._own = _globs(symbols)
        self._grants = [
            (frozenset(g.record_types), _globs(g.symbols), _window(g))
            for g in feed_grants(entitlements, feed, now)
        ]
        self._cache: dict[tuple[str, str], tuple[Window, ...]] = {}

    def windows(self, record_type: str, symbol: str) -> tuple[Window, ...]:
        """The time windows in which (type, symbol) is entitled; () = never (or filtered)."""
        key = (record_type, symbol)
        found = self._cache.get(key)
        if found is None:
            found = self._decide(record_type, symbol)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _decide(self, record_type: str, symbol: str) -> tuple[Window, ...]:
        if record_type not in self.types:
            return ()
        sym = symbol.upper()
        if not self._own.fullmatch(sym):
            return ()
        out = tuple(
            w
            for types, globs, w in self._grants
            if (not types or record_type in types) and globs.fullmatch(sym)
        )
        return ALWAYS if ALWAYS[0] in out else out

    def accepts(self, record_type: str, symbol: str, data_ns: int, now: int) -> bool:
        windows = self.windows(record_type, symbol)
        if windows is ALWAYS:
            return True
        return allowed(windows, data_ns, now)


def allowed(windows: tuple[Window, ...], data_ns: int, now: int) -> bool:
    for lo, hi, lookback, expires in windows:
        if now >= expires or data_ns < lo or data_ns >= hi:
            continue
        if lookback and data_ns < now - lookback:
            continue
        return True
    return False
