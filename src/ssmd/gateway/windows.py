"""Which part of a requested time range a principal may read (REST history policy).

Policy (docs/api.md "Entitlements"): a history request for a feed, symbol or record type
no entitlement covers, or for a range entirely outside every date window, is refused
(403, saying why); a range that overlaps a window only in part is CLIPPED to the
entitled intervals, the response says so (`clipped`), and every record is still checked
on its own (`record_time`) before it leaves — so no un-entitled record is ever returned.
"""

from __future__ import annotations

import fnmatch

from ssmd.gateway.auth import Principal, authorize, forbidden


def record_time(ts_event: int, ts_recv: int) -> int:
    """The time entitlement windows apply to: the venue's event time, else capture time."""
    return ts_event or ts_recv


def intervals(
    principal: Principal, feed: str, symbol: str, record_type: str, start: int, end: int, now: int
) -> list[tuple[int, int]]:
    """[start, end) ∩ the union of the entitlement windows covering (feed, symbol, type),
    as sorted disjoint intervals (empty when nothing is entitled)."""
    if not principal.client.active:
        return []
    found: list[tuple[int, int]] = []
    sym = symbol.upper()
    for ent in principal.entitlements:
        if ent.expires_ns is not None and now >= ent.expires_ns:
            continue
        if "*" not in ent.feeds and feed not in ent.feeds:
            continue
        if not any(fnmatch.fnmatchcase(sym, g.upper()) for g in ent.symbols):
            continue
        if ent.record_types and record_type not in ent.record_types:
            continue
        lo, hi = start, end
        if ent.date_from_ns is not None:
            lo = max(lo, ent.date_from_ns)
        if ent.lookback_ns:
            lo = max(lo, now - ent.lookback_ns)
        if ent.date_to_ns is not None:
            hi = min(hi, ent.date_to_ns)
        if lo < hi:
            found.append((lo, hi))
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(found):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def entitled_intervals(
    principal: Principal, feed: str, symbol: str, record_type: str, start: int, end: int, now: int
) -> list[tuple[int, int]]:
    """`intervals`, or a 403 AuthError explaining the nearest miss when there are none."""
    found = intervals(principal, feed, symbol, record_type, start, end, now)
    if not found:
        # start is not entitled either (else [start, …) would be): say why
        authorize(principal, feed, symbol, record_type, start, now=now)
        raise forbidden("not_entitled", f"not entitled to {feed}/{record_type}/{symbol}")
    return found
