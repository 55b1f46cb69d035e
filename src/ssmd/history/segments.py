"""Which raw segments a reprocessing run reads, from the local journal and the object
store's `raw/` keys (the shipper's copies), the local copy first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ssmd.capture.journal_format import parse_segment_name
from ssmd.capture.journal_manifest import MANIFEST_SUFFIX
from ssmd.capture.journal_read import list_segments
from ssmd.history.layout import hour_floor
from ssmd.storage import NotFound, ObjectStore


@dataclass(frozen=True)
class Segment:
    """One raw segment: its key (`raw/…`), where it can be read, and whose it is."""

    key: str
    shard: int
    conn: int
    start_ns: int
    closed: bool
    path: Path | None = None
    """Local file, or None when only the object store holds it (fetched on demand)."""

    @property
    def hour_ns(self) -> int:
        return hour_floor(self.start_ns)

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def find_segments(
    root: Path, store: ObjectStore | None, env: str, feed: str, until_ns: int
) -> list[Segment]:
    """Every segment of the feed starting before `until_ns`, in (start, shard, conn) order."""
    found: dict[str, Segment] = {}
    for s in list_segments(root, env, feed, until_ns=until_ns):
        key = s.path.relative_to(root).as_posix()
        found[key] = Segment(key, s.shard, s.conn, s.start_ns, s.closed, s.path)
    if store is not None:
        try:
            objects = list(store.list(f"raw/{env}/{feed}"))
        except (NotFound, FileNotFoundError):
            objects = []
        keys = {o.key for o in objects}
        for key in sorted(keys):
            name = parse_segment_name(key.rsplit("/", 1)[-1])
            if name is None or key in found or name.start_ns >= until_ns:
                continue
            closed = key + MANIFEST_SUFFIX in keys
            found[key] = Segment(key, name.shard, name.conn, name.start_ns, closed)
    return sorted(found.values(), key=lambda s: (s.start_ns, s.shard, s.conn, s.name))


def fetch(segment: Segment, store: ObjectStore | None, cache: Path) -> Path:
    """A local path to the segment (and its manifest beside it)."""
    if segment.path is not None:
        return segment.path
    if store is None:
        raise FileNotFoundError(segment.key)
    target = cache / segment.key
    if not target.exists():
        if segment.closed:
            store.download(segment.key + MANIFEST_SUFFIX, Path(str(target) + MANIFEST_SUFFIX))
        store.download(segment.key, target)
    return target
