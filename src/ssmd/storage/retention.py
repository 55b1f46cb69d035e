"""Per-tier retention (DESIGN §7, spec `storage.retention`): plan, then apply.

Tiers, each counted from the time of the newest data it holds (0 = keep forever):

- `journal`     local closed segments, only when verified-shipped (catalog) and their
                newest line is older than `retention.journal`;
- `raw`         raw objects, only for segments the catalog has as **verified** (nothing
                else is ever deleted: an object the catalog does not vouch for may be the
                only copy) and older than `retention.raw`; the manifest object goes too;
- `normalized`  Parquet, by whole date partition
                (`normalized/v{N}/{env}/{feed}/{type}/date=…`) once the day has ended
                more than `retention.normalized` ago.

`plan` changes nothing (the dry run prints it); `apply` executes a plan, auditing every
deletion, each in its own transaction right after it happened, so an interrupted run
leaves a catalog and an audit log that tell the truth.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from ssmd.capture.journal_format import JournalError
from ssmd.capture.journal_manifest import read_manifest
from ssmd.meta import audit
from ssmd.spec.model import Retention
from ssmd.storage import catalog
from ssmd.storage.keys import manifest_key, normalized_partition
from ssmd.storage.localfiles import closed_segments, delete_local
from ssmd.storage.shipper import local_expired, record_local_delete
from ssmd.storage.store import ObjectStore

__all__ = ["TIERS", "Item", "Plan", "apply", "plan"]

TIERS = ("journal", "raw", "normalized")


@dataclass(frozen=True)
class Item:
    """One thing a tier would delete (a segment, or a whole normalized partition)."""

    tier: str
    key: str
    size: int
    end_ns: int
    files: int = 1


@dataclass(frozen=True)
class Held:
    """Old enough to go, kept anyway, and why (never-verified segments, mismatches)."""

    tier: str
    key: str
    reason: str


@dataclass
class Plan:
    env: str
    now_ns: int
    retention: dict[str, int]
    items: dict[str, list[Item]] = field(default_factory=lambda: {t: [] for t in TIERS})
    held: list[Held] = field(default_factory=list)
    deleted: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in TIERS})
    executed: bool = False

    def as_dict(self) -> dict[str, object]:
        tiers: dict[str, object] = {}
        for tier in TIERS:
            items = self.items[tier]
            tiers[tier] = {
                "retention_ns": self.retention[tier],
                "count": len(items),
                "bytes": sum(i.size for i in items),
                "items": [
                    {"key": i.key, "size": i.size, "end_ns": i.end_ns, "files": i.files}
                    for i in items
                ],
                "held": [{"key": h.key, "reason": h.reason} for h in self.held if h.tier == tier],
                "deleted": self.deleted[tier],
            }
        return {"env": self.env, "now_ns": self.now_ns, "executed": self.executed, "tiers": tiers}


def _old(now: int, end_ns: int, window: int) -> bool:
    return window > 0 and now - end_ns >= window


def plan(
    conn: psycopg.Connection,
    store: ObjectStore,
    env: str,
    root: Path,
    retention: Retention,
    now_ns: int,
) -> Plan:
    """What each tier would delete now; reads the catalog, the disk and the store."""
    windows = {t: int(getattr(retention, t)) for t in TIERS}
    out = Plan(env, now_ns, windows)
    _plan_journal(out, conn, Path(root))
    _plan_raw(out, conn)
    _plan_normalized(out, store)
    return out


def _plan_journal(out: Plan, conn: psycopg.Connection, root: Path) -> None:
    window = out.retention["journal"]
    if window <= 0:
        return
    segments = closed_segments(root, out.env)
    known = catalog.by_keys(conn, [s.key for s in segments])
    for seg in segments:
        row = known.get(seg.key)
        if row is None or not row.verified:
            try:
                m = read_manifest(seg.path)
            except JournalError:
                m = None
            end = catalog.end_ns(m) if m is not None else seg.start_ns
            if _old(out.now_ns, end, window):
                out.held.append(Held("journal", seg.key, "not verified-shipped yet"))
            continue
        if not local_expired(row, out.now_ns, window):
            continue
        try:
            m = read_manifest(seg.path)
        except JournalError:
            m = None
        if m is None or m.sha256 != row.sha256:
            out.held.append(Held("journal", seg.key, "local file differs from the verified one"))
            continue
        out.items["journal"].append(Item("journal", seg.key, seg.size, row.end_ns))


def _plan_raw(out: Plan, conn: psycopg.Connection) -> None:
    window = out.retention["raw"]
    if window <= 0:
        return
    for row in catalog.rows(conn, out.env, until_ns=out.now_ns - window + 1):
        if not _old(out.now_ns, row.end_ns, window) or row.object_deleted_ns is not None:
            continue
        if row.verified:
            out.items["raw"].append(Item("raw", row.key, row.size, row.end_ns))
        else:
            why = "quarantined" if row.quarantine_reason else "not verified in the catalog"
            out.held.append(Held("raw", row.key, why))


def _plan_normalized(out: Plan, store: ObjectStore) -> None:
    window = out.retention["normalized"]
    if window <= 0:
        return
    parts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # prefix -> files, bytes, end
    for obj in store.list("normalized"):
        part = normalized_partition(obj.key)
        if part is None or part.env != out.env or not _old(out.now_ns, part.end_ns, window):
            continue
        acc = parts[part.prefix]
        acc[0] += 1
        acc[1] += obj.size
        acc[2] = part.end_ns
    for prefix in sorted(parts):
        files, size, end = parts[prefix]
        out.items["normalized"].append(Item("normalized", prefix, size, end, files))


def apply(
    out: Plan,
    conn: psycopg.Connection,
    store: ObjectStore,
    root: Path,
    actor: str,
    on_delete: Callable[[Item], None] | None = None,
) -> Plan:
    """Execute `out` (from `plan`), tier by tier; every deletion is audited. A store or
    Postgres failure stops the run (raised); what was done so far is recorded."""
    out.executed = True
    for item in out.items["journal"]:
        row = catalog.get(conn, item.key)
        conn.commit()
        if row is None or not local_expired(row, out.now_ns, out.retention["journal"]):
            continue  # changed since the plan: re-check, never trust a stale plan
        delete_local(Path(root), Path(root) / item.key, out.now_ns)
        with conn.transaction():
            record_local_delete(conn, actor, row, out.now_ns, out.retention["journal"], "retention")
        conn.commit()
        out.deleted["journal"].append(item.key)
        if on_delete:
            on_delete(item)
    for item in out.items["raw"]:
        row = catalog.get(conn, item.key)
        conn.commit()
        if row is None or not row.verified or row.object_deleted_ns is not None:
            continue
        store.delete(item.key)
        store.delete(manifest_key(item.key))
        with conn.transaction():
            catalog.mark_object_deleted(conn, item.key, out.now_ns)
            audit.append(
                conn,
                actor,
                "segment.delete_object",
                item.key,
                {
                    "tier": "raw",
                    "size": item.size,
                    "sha256": row.sha256,
                    "end_ns": item.end_ns,
                    "retention_ns": out.retention["raw"],
                },
                ts_ns=out.now_ns,
            )
        conn.commit()
        out.deleted["raw"].append(item.key)
        if on_delete:
            on_delete(item)
    for item in out.items["normalized"]:
        files = size = 0
        for obj in list(store.list(item.key)):
            store.delete(obj.key)
            files += 1
            size += obj.size
        with conn.transaction():
            audit.append(
                conn,
                actor,
                "normalized.delete_partition",
                item.key,
                {
                    "tier": "normalized",
                    "files": files,
                    "size": size,
                    "end_ns": item.end_ns,
                    "retention_ns": out.retention["normalized"],
                },
                ts_ns=out.now_ns,
            )
        conn.commit()
        out.deleted["normalized"].append(item.key)
        if on_delete:
            on_delete(item)
    return out
