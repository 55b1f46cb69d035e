"""Local journal files the shipper and retention act on: listing, hashing, moving aside,
deleting. The journal writer owns creating them; this module only ever removes closed
ones (a manifest present), so it can never race a live writer's open segment.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import NamedTuple

from ssmd.capture.journal_format import HOUR_NS, parse_segment_name
from ssmd.capture.journal_manifest import MANIFEST_SUFFIX, fsync_dir, manifest_path
from ssmd.capture.journal_read import list_segments
from ssmd.storage.keys import quarantine_path, raw_key

__all__ = [
    "LocalSegment",
    "closed_segments",
    "delete_local",
    "file_digest",
    "move_to_quarantine",
    "segment_from_path",
]

_READ = 1 << 20


class LocalSegment(NamedTuple):
    """A closed segment on disk: its path, object key, feed and name parts."""

    path: Path
    key: str
    feed: str
    shard: int
    conn: int
    start_ns: int
    size: int


def closed_segments(root: Path, env: str) -> list[LocalSegment]:
    """Every closed segment (manifest present) of every feed of `env`, oldest first."""
    base = Path(root) / "raw" / env
    found: list[LocalSegment] = []
    if not base.is_dir():
        return found
    for feed_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for seg in list_segments(root, env, feed_dir.name, closed_only=True):
            try:
                size = seg.path.stat().st_size
            except FileNotFoundError:
                continue  # removed meanwhile (another shipper or retention run)
            key = raw_key(root, seg.path)
            found.append(
                LocalSegment(seg.path, key, feed_dir.name, seg.shard, seg.conn, seg.start_ns, size)
            )
    found.sort(key=lambda s: (s.start_ns, s.feed, s.shard, s.conn, s.key))
    return found


def file_digest(path: Path) -> tuple[int, str]:
    """(size, hex sha256) of a local file, read in full."""
    sha = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as fh:
        while block := fh.read(_READ):
            sha.update(block)
            size += len(block)
    return size, sha.hexdigest()


def move_to_quarantine(root: Path, path: Path, key: str, now_ns: int) -> Path:
    """Move a segment and its manifest (if any) to `{data}/quarantine/{key}`; a second
    quarantine of the same key gets `.{now_ns}` appended instead of overwriting."""
    dest = quarantine_path(root, key)
    if dest.exists() or manifest_path(dest).exists():
        dest = dest.with_name(f"{dest.name}.{now_ns}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, dest)
    src_manifest = manifest_path(Path(path))
    if src_manifest.exists():
        os.replace(src_manifest, dest.with_name(dest.name + MANIFEST_SUFFIX))
    fsync_dir(dest.parent)
    fsync_dir(Path(path).parent)
    return dest


def delete_local(root: Path, path: Path, now_ns: int) -> None:
    """Remove a closed segment, then its manifest (a crash in between leaves a lone
    manifest, which nothing lists); prune its hour/date directories once they are
    empty and at least two hours old, so a writer never loses a directory it is about
    to create a file in."""
    path = Path(path)
    path.unlink(missing_ok=True)
    manifest_path(path).unlink(missing_ok=True)
    fsync_dir(path.parent)
    name = parse_segment_name(path.name)
    if name is None or now_ns - (name.start_ns - name.start_ns % HOUR_NS) < 3 * HOUR_NS:
        return
    stop = (Path(root) / "raw").resolve()
    for directory in (path.parent, path.parent.parent):  # {HH}, then {YYYY-MM-DD}
        if directory.resolve() == stop or stop not in directory.resolve().parents:
            return
        with contextlib.suppress(OSError):
            directory.rmdir()  # only succeeds when empty


def segment_from_path(root: Path, path: Path) -> LocalSegment | None:
    """A LocalSegment for a path under `{root}/raw/{env}/{feed}/…` (None if not one)."""
    name = parse_segment_name(Path(path).name)
    if name is None:
        return None
    key = raw_key(root, path)
    parts = key.split("/")
    if len(parts) != 6 or parts[0] != "raw":
        return None
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        size = 0
    return LocalSegment(Path(path), key, parts[2], name.shard, name.conn, name.start_ns, size)
