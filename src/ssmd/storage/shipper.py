"""The raw shipper's core: closed journal segments → object store → verified → catalog.

One pass (`Shipper.run_pass`) does, for every closed segment of the environment, oldest
first:

1. known verified in the catalog → only the local retention check (step 6);
2. check the local bytes against the manifest (size + sha256); a mismatch, an unreadable
   manifest or a manifest naming another key → **quarantine** (moved to
   `{data}/quarantine/{key}`, catalog row + audit entry say why) and go on;
3. catalog row written as pending *before* any upload (a crash later leaves a trace);
4. if the store already has an object of the right size at the key, read it back: equal
   → no upload (resume after a crash between upload and record); otherwise put it (a
   deterministic key: a retry replaces, never adds);
5. **verify by reading the object back** and hashing it: size and sha256 must equal the
   manifest; then the manifest goes beside it and the row becomes verified;
6. delete the local copy only when verified AND its newest line is older than
   `retention.journal` (0 = keep forever); audited.

Store errors: `StoreUnavailable` (and denied/config errors) end the pass with nothing
deleted — the caller backs off and retries; a read-back that differs from the manifest
fails that one segment (recorded, retried next pass) and the pass goes on.

Synchronous on purpose (obstore and psycopg calls block); the service runs passes in a
worker thread and stops them between segments.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psycopg

from ssmd.capture.journal_format import JournalError
from ssmd.capture.journal_manifest import Manifest, manifest_path, read_manifest
from ssmd.meta import MetaUnreachable, audit
from ssmd.storage import catalog
from ssmd.storage.catalog import CatalogRow
from ssmd.storage.keys import manifest_key
from ssmd.storage.localfiles import (
    LocalSegment,
    closed_segments,
    delete_local,
    file_digest,
    move_to_quarantine,
)
from ssmd.storage.store import NotFound, ObjectStore, StoreError

__all__ = [
    "SHIPPER_LOCK",
    "Outcome",
    "PassReport",
    "Progress",
    "Shipper",
    "ShipperBusy",
    "VerifyMismatch",
    "local_expired",
    "record_local_delete",
]

log = logging.getLogger("ssmd.shipper")

SHIPPER_LOCK = 0x73736D64
"""First key of the session advisory lock (second: hashtext(env)): one shipper per env."""


class Outcome(enum.StrEnum):
    SHIPPED = "shipped"
    """Uploaded and verified in this pass."""
    FOUND = "found"
    """The store already held exactly these bytes (a resumed run): verified, no upload."""
    QUARANTINED = "quarantined"
    FAILED = "failed"
    """Read-back did not match: left local and pending, retried next pass."""


class ShipperBusy(RuntimeError):
    """Another shipper holds this environment's lock."""


class VerifyMismatch(StoreError):
    """The store's bytes for a key differ from the manifest after an upload."""


class Progress(Protocol):
    """What the foreground progress display needs (the CLI passes a rich one)."""

    def begin(self, segments: int, total_bytes: int) -> None: ...
    def advance(self, key: str, size: int, outcome: str) -> None: ...
    def end(self) -> None: ...


@dataclass
class PassReport:
    """What one pass did; `error` is set when it ended early on a store/Postgres failure."""

    shipped: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    deleted_local: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0
    pending: int = 0
    """Closed segments still not verified when the pass ended."""
    pending_bytes: int = 0
    oldest_pending_ns: int | None = None
    error: str = ""
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return not self.error

    def merge(self, other: PassReport) -> None:
        """Fold a later pass into this one (the --once summary over retried passes)."""
        for name in ("shipped", "found", "quarantined", "failed", "deleted_local"):
            getattr(self, name).extend(getattr(other, name))
        self.bytes_uploaded += other.bytes_uploaded
        self.pending, self.pending_bytes = other.pending, other.pending_bytes
        self.oldest_pending_ns = other.oldest_pending_ns
        self.error, self.stopped = other.error, other.stopped

    def as_dict(self) -> dict[str, object]:
        return {
            "shipped": self.shipped,
            "found": self.found,
            "quarantined": [{"key": k, "reason": r} for k, r in self.quarantined],
            "failed": [{"key": k, "error": e} for k, e in self.failed],
            "deleted_local": self.deleted_local,
            "bytes_uploaded": self.bytes_uploaded,
            "pending": self.pending,
            "pending_bytes": self.pending_bytes,
            "error": self.error,
            "stopped": self.stopped,
        }


def local_expired(row: CatalogRow, now_ns: int, retention_ns: int) -> bool:
    """May the local copy go? Verified, and its newest line older than the window
    (0 = keep forever)."""
    return (
        row.verified
        and row.quarantine_reason is None
        and retention_ns > 0
        and now_ns - row.end_ns >= retention_ns
    )


def record_local_delete(
    conn: psycopg.Connection, actor: str, row: CatalogRow, now: int, retention_ns: int, by: str
) -> None:
    """Catalog stamp + audit entry for a deleted local copy (caller's transaction)."""
    catalog.mark_local_deleted(conn, row.key, now)
    audit.append(
        conn,
        actor,
        "segment.delete_local",
        row.key,
        {
            "tier": "journal",
            "size": row.size,
            "sha256": row.sha256,
            "end_ns": row.end_ns,
            "retention_ns": retention_ns,
            "by": by,
        },
        ts_ns=now,
    )


class Shipper:
    """Ships one environment's closed segments from `root` (the data dir) to `store`."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        store: ObjectStore,
        env: str,
        root: Path,
        *,
        journal_retention_ns: int,
        actor: str = "shipper",
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._connect = connect
        self._conn: psycopg.Connection | None = None
        self.store = store
        self.env = env
        self.root = Path(root)
        self.journal_retention_ns = journal_retention_ns
        self.actor = actor
        self.clock = clock
        self.totals: dict[str, int] = {o.value: 0 for o in Outcome} | {"deleted_local": 0}
        self.bytes_uploaded = 0
        self.store_errors = 0
        self.last: PassReport = PassReport()
        self.last_pass_ns = 0

    # -- connection ---------------------------------------------------------------------

    def conn(self) -> psycopg.Connection:
        """The catalog connection, (re)opened with this env's shipper lock held."""
        if self._conn is None or self._conn.closed:
            conn = self._connect()
            got = conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (SHIPPER_LOCK, self.env)
            ).fetchone()
            conn.commit()
            if not got or not got[0]:
                conn.close()
                raise ShipperBusy(f"another shipper is running for environment {self.env!r}")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        conn = self.conn()
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    # -- one pass -----------------------------------------------------------------------

    def run_pass(
        self, stop: threading.Event | None = None, progress: Progress | None = None
    ) -> PassReport:
        """Expire local copies, then ship every closed segment not yet verified."""
        report = PassReport()
        try:
            self._pass(report, stop or threading.Event(), progress)
        except StoreError as exc:  # unavailable, denied, misconfigured
            self.store_errors += 1
            report.error = f"{type(exc).__name__}: {exc}"
            log.warning("object store failed; pass ends, nothing deleted: %s", exc)
        except (psycopg.OperationalError, MetaUnreachable) as exc:
            report.error = f"Postgres: {' '.join(str(exc).split())}"
            log.warning("catalog unreachable; pass ends: %s", report.error)
            self.close()
        self.last = report
        self.last_pass_ns = self.clock()
        return report

    def _pass(self, report: PassReport, stop: threading.Event, progress: Progress | None) -> None:
        segments = closed_segments(self.root, self.env)
        known = catalog.by_keys(self.conn(), [s.key for s in segments])
        self.conn().commit()
        todo: list[LocalSegment] = []
        for seg in segments:
            row = known.get(seg.key)
            if row is not None and row.verified:
                self._expire(seg, row, report)
            else:
                todo.append(seg)
        self._set_pending(report, todo)
        if progress is not None:
            progress.begin(len(todo), sum(s.size for s in todo))
        failed: list[LocalSegment] = []
        try:
            for i, seg in enumerate(todo):
                if stop.is_set():
                    report.stopped = True
                    break
                outcome = self.ship(seg, report)
                if outcome is Outcome.FAILED:
                    failed.append(seg)
                self._set_pending(report, failed + todo[i + 1 :])
                self.totals[outcome.value] += 1
                if progress is not None:
                    progress.advance(seg.key, seg.size, outcome.value)
        finally:
            if progress is not None:
                progress.end()

    def _set_pending(self, report: PassReport, rest: list[LocalSegment]) -> None:
        report.pending = len(rest)
        report.pending_bytes = sum(s.size for s in rest)
        report.oldest_pending_ns = min((s.start_ns for s in rest), default=None)

    # -- one segment --------------------------------------------------------------------

    def ship(self, seg: LocalSegment, report: PassReport | None = None) -> Outcome:
        """Ship, verify and record one closed segment (see the module docstring)."""
        report = report if report is not None else PassReport()
        try:
            m = read_manifest(seg.path)
        except JournalError as exc:
            return self._quarantine(seg, None, f"unreadable manifest: {exc}", report)
        if m is None:  # cannot happen for a listed closed segment unless moved meanwhile
            return self._quarantine(seg, None, "manifest disappeared", report)
        if m.key != seg.key or m.env != self.env:
            reason = f"manifest names key {m.key!r} (env {m.env!r}), file is at {seg.key!r}"
            return self._quarantine(seg, m, reason, report)
        size, sha = file_digest(seg.path)
        if (size, sha) != (m.size, m.sha256):
            reason = (
                f"local bytes do not match the manifest: size {size} (manifest {m.size}), "
                f"sha256 {sha} (manifest {m.sha256})"
            )
            return self._quarantine(seg, m, reason, report)
        with self._tx() as conn:
            row = catalog.upsert_pending(conn, m, self.clock())
        if row.verified:  # verified meanwhile (another pass) — nothing to upload
            self._expire(seg, row, report)
            return Outcome.FOUND
        try:
            outcome, etag, shipped_ns = self._upload_verified(seg, m, report)
        except VerifyMismatch as exc:
            with self._tx() as conn:
                catalog.mark_failed(conn, m.key, str(exc), self.clock())
            report.failed.append((m.key, str(exc)))
            log.error("verification failed, will retry: %s", exc, extra={"key": m.key})
            return Outcome.FAILED
        except StoreError as exc:
            with self._tx() as conn:
                catalog.mark_failed(conn, m.key, str(exc), self.clock())
            raise
        with self._tx() as conn:
            catalog.mark_verified(conn, m.key, etag, shipped_ns, self.clock())
            row = catalog.get(conn, m.key)
        (report.shipped if outcome is Outcome.SHIPPED else report.found).append(m.key)
        log.info(
            "segment %s", outcome.value, extra={"key": m.key, "size": m.size, "lines": m.lines}
        )
        assert row is not None
        self._expire(seg, row, report)
        return outcome

    def _upload_verified(
        self, seg: LocalSegment, m: Manifest, report: PassReport
    ) -> tuple[Outcome, str, int]:
        """Make the store hold the manifest's bytes at its key; returns (outcome, etag,
        when shipped). Verification re-reads the object: see docs/operations.md."""
        want = (m.size, m.sha256)
        outcome = Outcome.FOUND
        try:
            info = self.store.head(m.key)
            present = info.size == m.size and self.store.digest(m.key) == want
        except NotFound:
            present = False
        if not present:
            info = self.store.put(m.key, seg.path)
            report.bytes_uploaded += m.size
            self.bytes_uploaded += m.size
            outcome = Outcome.SHIPPED
            got = self.store.digest(m.key)
            if got != want:
                raise VerifyMismatch(
                    f"{m.key}: the store returned {got[0]} bytes sha256 {got[1]}, "
                    f"manifest says {m.size} bytes sha256 {m.sha256}",
                    m.key,
                )
        shipped_ns = self.clock()
        self.store.put(manifest_key(m.key), manifest_path(seg.path).read_bytes())
        return outcome, info.etag, shipped_ns

    def _expire(self, seg: LocalSegment, row: CatalogRow, report: PassReport) -> None:
        now = self.clock()
        if not local_expired(row, now, self.journal_retention_ns):
            return
        try:
            m = read_manifest(seg.path)
        except JournalError:
            m = None
        if m is None or m.sha256 != row.sha256:
            log.error(
                "local segment differs from the verified one in the catalog; kept",
                extra={"key": seg.key},
            )
            return
        delete_local(self.root, seg.path, now)
        with self._tx() as conn:
            record_local_delete(conn, self.actor, row, now, self.journal_retention_ns, "shipper")
        report.deleted_local.append(seg.key)
        self.totals["deleted_local"] += 1
        log.info("local copy deleted", extra={"key": seg.key, "end_ns": row.end_ns})

    def _quarantine(
        self, seg: LocalSegment, m: Manifest | None, reason: str, report: PassReport
    ) -> Outcome:
        now = self.clock()
        dest = move_to_quarantine(self.root, seg.path, seg.key, now)
        with self._tx() as conn:
            catalog.mark_quarantined(
                conn,
                key=seg.key,
                env=self.env,
                feed=seg.feed,
                shard=seg.shard,
                conn_no=seg.conn,
                start_ns=seg.start_ns,
                size=seg.size,
                manifest=m,
                reason=reason,
                path=str(dest),
                now=now,
            )
            audit.append(
                conn,
                self.actor,
                "segment.quarantine",
                seg.key,
                {"reason": reason, "moved_to": str(dest), "size": seg.size},
                ts_ns=now,
            )
        report.quarantined.append((seg.key, reason))
        log.error("segment quarantined: %s", reason, extra={"key": seg.key, "moved_to": str(dest)})
        return Outcome.QUARANTINED
