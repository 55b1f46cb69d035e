"""Reading, listing, verifying and crash-sealing raw journal segments.

A segment is a sequence of zstd frames, each ending on a line boundary. Reading goes
frame by frame and yields every complete line; a last frame cut short by a crash ends
the iteration quietly with `truncated = True` (the lines of its complete blocks are
still yielded), while bytes that do not decode raise `JournalCorrupt` (or, for
recovery, stop the iteration with `problem` set).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import msgspec
import zstandard

from ssmd.capture.journal_format import (
    HOUR_NS,
    SUFFIX,
    JournalCorrupt,
    JournalError,
    JournalLine,
    decode_line,
    parse_segment_name,
)
from ssmd.capture.journal_manifest import Manifest, manifest_path, read_manifest, write_manifest

__all__ = [
    "SegmentInfo",
    "SegmentReader",
    "SegmentTail",
    "Verdict",
    "iter_segment",
    "list_segments",
    "open_segments",
    "seal_orphans",
    "verify_segment",
]

_READ = 1 << 20


class SegmentReader(Iterator[JournalLine]):
    """Iterator over one segment's lines; its attributes report how reading went.

    After the iteration: `lines` (complete lines seen, skipped ones included),
    `frames` (complete zstd frames), `readable_bytes` (offset past the last complete
    frame), `truncated` (the file ends inside a frame), `problem` (why reading stopped
    early when `stop_on_corrupt`).
    """

    def __init__(self, path: Path, *, start_line: int = 0, stop_on_corrupt: bool = False):
        self.path = Path(path)
        self.start_line = start_line
        self.stop_on_corrupt = stop_on_corrupt
        self.lines = 0
        self.frames = 0
        self.readable_bytes = 0
        self.truncated = False
        self.problem = ""
        self._gen = self._run()

    def __iter__(self) -> SegmentReader:
        return self

    def __next__(self) -> JournalLine:
        return next(self._gen)

    def _run(self) -> Iterator[JournalLine]:
        try:
            fh = self.path.open("rb")
        except OSError as e:
            raise JournalError(self.path, e.errno, f"cannot open segment ({e.strerror})") from e
        with fh:
            yield from self._frames(fh)

    def _frames(self, fh: object) -> Iterator[JournalLine]:
        dctx = zstandard.ZstdDecompressor()
        dobj = dctx.decompressobj()
        pos = 0  # file offset of `chunk`
        in_frame = False
        pending = b""
        while True:
            chunk = self._read(fh)
            if not chunk:
                break
            while chunk:
                try:
                    out = dobj.decompress(chunk)
                except zstandard.ZstdError as e:
                    yield from self._corrupt(f"zstd error in frame at byte {pos}: {e}")
                    return
                if out:
                    pending += out
                    *complete, pending = pending.split(b"\n")
                    for raw in complete:
                        if not raw:
                            continue
                        index = self.lines
                        self.lines += 1
                        if index < self.start_line:
                            continue
                        try:
                            line = decode_line(raw)
                        except (msgspec.DecodeError, ValueError) as e:
                            self.lines -= 1
                            yield from self._corrupt(f"bad line {index}: {e}")
                            return
                        yield line
                if dobj.eof:
                    rest = dobj.unused_data
                    pos += len(chunk) - len(rest)
                    self.frames += 1
                    self.readable_bytes = pos
                    in_frame = False
                    if pending:
                        yield from self._corrupt(f"frame ending at byte {pos} ends mid-line")
                        return
                    dobj = dctx.decompressobj()
                    chunk = rest
                else:
                    pos += len(chunk)
                    in_frame = True
                    chunk = b""
        self.truncated = in_frame

    def _read(self, fh: object) -> bytes:
        try:
            return fh.read(_READ)  # type: ignore[attr-defined,no-any-return]
        except OSError as e:
            raise JournalError(self.path, e.errno, f"cannot read segment ({e.strerror})") from e

    def _corrupt(self, why: str) -> Iterator[JournalLine]:
        if not self.stop_on_corrupt:
            raise JournalCorrupt(self.path, None, why)
        self.problem = why
        return iter(())


def iter_segment(
    path: Path, *, start_line: int = 0, stop_on_corrupt: bool = False
) -> SegmentReader:
    """Lines of a segment from `start_line` (0-based), open or closed; see SegmentReader."""
    return SegmentReader(path, start_line=start_line, stop_on_corrupt=stop_on_corrupt)


class SegmentTail:
    """Follows one segment while its writer appends to it (a connector catching up).

    The file stays open and the zstd stream state is kept between `take()` calls, so
    each call decodes only bytes it has not read before. (`iter_segment(path,
    start_line=n)` per call decompresses the segment from its start every time:
    quadratic in the segment's size, and exactly when the connector is overloaded.)
    Lines the writer has not flushed (`Journal.flush`) are not visible yet; they come
    out of a later `take()`.
    """

    def __init__(self, path: Path, start_line: int = 0, read_size: int = 1 << 16) -> None:
        self.path = Path(path)
        self.line = 0
        """Index of the next line to come out of the decompressor."""
        self._start = start_line
        self._read_size = read_size
        self._dctx = zstandard.ZstdDecompressor()
        self._dobj = self._dctx.decompressobj()
        self._pending = b""
        self._ready: deque[tuple[int, bytes]] = deque()
        self._offset = 0
        try:
            self._fh = self.path.open("rb")
        except OSError as e:
            raise JournalError(self.path, e.errno, f"cannot open segment ({e.strerror})") from e

    def skip_to(self, line: int) -> None:
        """Take nothing before `line` (forward only: the link went live for a while)."""
        if line < self._start:
            raise ValueError(f"cannot go back from line {self._start} to {line}")
        self._start = line
        ready = self._ready
        while ready and ready[0][0] < line:
            ready.popleft()

    def take(self, limit: int) -> list[tuple[int, JournalLine]]:
        """Up to `limit` (line index, line) not taken yet; fewer at the file's current end."""
        out: list[tuple[int, JournalLine]] = []
        ready = self._ready
        while len(out) < limit:
            if not ready and not self._fill():
                break
            while ready and len(out) < limit:
                n, raw = ready.popleft()
                try:
                    out.append((n, decode_line(raw)))
                except (msgspec.DecodeError, ValueError) as e:
                    raise JournalCorrupt(self.path, None, f"bad line {n}: {e}") from None
        return out

    def close(self) -> None:
        self._fh.close()

    def _fill(self) -> bool:
        """Decompress the next chunk of the file; False at its current end."""
        try:
            chunk = self._fh.read(self._read_size)
        except OSError as e:
            raise JournalError(self.path, e.errno, f"cannot read segment ({e.strerror})") from e
        if not chunk:
            return False
        while chunk:
            try:
                out = self._dobj.decompress(chunk)
            except zstandard.ZstdError as e:
                why = f"zstd error after byte {self._offset}: {e}"
                raise JournalCorrupt(self.path, None, why) from None
            if out:
                *complete, self._pending = (self._pending + out).split(b"\n")
                start, n = self._start, self.line
                for raw in complete:
                    if raw:
                        if n >= start:
                            self._ready.append((n, raw))
                        n += 1
                self.line = n
            if self._dobj.eof:
                rest = self._dobj.unused_data
                self._offset += len(chunk) - len(rest)
                self._dobj = self._dctx.decompressobj()
                chunk = rest
            else:
                self._offset += len(chunk)
                chunk = b""
        return True


# -- listing ------------------------------------------------------------------------


class SegmentInfo(NamedTuple):
    """A segment found on disk; `closed` = it has a manifest."""

    path: Path
    shard: int
    conn: int
    start_ns: int
    closed: bool


def list_segments(
    root: Path,
    env: str,
    feed: str,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    closed_only: bool = False,
    shard: int | None = None,
) -> list[SegmentInfo]:
    """Segments of a feed in time order (start_ns, shard, conn).

    Time filter from names alone (no file opened): a segment may hold lines in
    [since_ns, until_ns) if it starts before until_ns and its UTC hour (segments never
    span one) ends after since_ns.
    """
    base = Path(root) / "raw" / env / feed
    found: list[SegmentInfo] = []
    for path in base.glob(f"*/*/*{SUFFIX}"):
        name = parse_segment_name(path.name)
        if name is None or (shard is not None and name.shard != shard):
            continue
        if until_ns is not None and name.start_ns >= until_ns:
            continue
        if since_ns is not None and name.start_ns - name.start_ns % HOUR_NS + HOUR_NS <= since_ns:
            continue
        closed = manifest_path(path).exists()
        if closed_only and not closed:
            continue
        found.append(SegmentInfo(path, name.shard, name.conn, name.start_ns, closed))
    found.sort(key=lambda s: (s.start_ns, s.shard, s.conn, s.path.name))
    return found


def open_segments(
    root: Path, env: str, feed: str, *, shard: int | None = None
) -> list[SegmentInfo]:
    """Segments without a manifest: being written, or left by a crash."""
    return [s for s in list_segments(root, env, feed, shard=shard) if not s.closed]


# -- verification -------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Result of `verify_segment`; truthy when ok."""

    ok: bool
    problem: str = ""

    def __bool__(self) -> bool:
        return self.ok


def _digest(fd: int) -> tuple[int, str]:
    sha = hashlib.sha256()
    size = 0
    os.lseek(fd, 0, os.SEEK_SET)
    while block := os.read(fd, _READ):
        sha.update(block)
        size += len(block)
    return size, sha.hexdigest()


def verify_segment(path: Path) -> Verdict:
    """Check a closed segment against its manifest: size, sha256, lines, frames, first/last t."""
    path = Path(path)
    m = read_manifest(path)
    if m is None:
        return Verdict(False, f"no manifest (open or crashed): {path}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        return Verdict(False, f"cannot open {path}: {e.strerror} [errno {e.errno}]")
    try:
        size, sha = _digest(fd)
    finally:
        os.close(fd)
    if size != m.size:
        return Verdict(False, f"size {size} != manifest {m.size}: {path}")
    if sha != m.sha256:
        return Verdict(False, f"sha256 {sha} != manifest {m.sha256}: {path}")
    reader = iter_segment(path, stop_on_corrupt=m.recovered)
    first = last = None
    try:
        for line in reader:
            if first is None:
                first = line.t
            last = line.t
    except JournalCorrupt as e:
        return Verdict(False, str(e))
    got = (reader.lines, reader.frames, reader.truncated, first, last)
    want = (m.lines, m.frames, m.truncated, m.first_t, m.last_t)
    if got != want:
        return Verdict(
            False, f"(lines, frames, truncated, first_t, last_t) {got} != manifest {want}"
        )
    if not m.recovered and (reader.truncated or reader.problem):
        return Verdict(False, f"closed segment is truncated: {path}")
    return Verdict(True)


# -- recovery -----------------------------------------------------------------------


def seal_orphans(root: Path, env: str, feed: str, shard: int) -> list[Manifest]:
    """Write `recovered: true` manifests for this shard's segments left open by a crash.

    Call when (re)starting the shard's connector, before its new Journal. The manifest
    counts the lines that read back; sha256 and size cover the whole file, whose bytes
    are never touched. Segments still locked by a live writer are left alone.
    """
    sealed: list[Manifest] = []
    for seg in open_segments(root, env, feed, shard=shard):
        try:
            fd = os.open(seg.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise JournalError(seg.path, e.errno, f"cannot open orphan ({e.strerror})") from e
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer owns it
            if manifest_path(seg.path).exists():
                continue  # sealed meanwhile
            sealed.append(_seal_one(Path(root), env, feed, seg, fd))
        finally:
            os.close(fd)
    return sealed


def _seal_one(root: Path, env: str, feed: str, seg: SegmentInfo, fd: int) -> Manifest:
    try:
        size, sha = _digest(fd)
    except OSError as e:
        raise JournalError(seg.path, e.errno, f"cannot read orphan ({e.strerror})") from e
    reader = iter_segment(seg.path, stop_on_corrupt=True)
    first: JournalLine | None = None
    last: JournalLine | None = None
    for line in reader:
        first = first or line
        last = line
    manifest = Manifest(
        env=env,
        feed=feed,
        shard=seg.shard,
        conn=seg.conn,
        segment=seg.path.name,
        key=seg.path.relative_to(root).as_posix(),
        start_ns=seg.start_ns,
        size=size,
        sha256=sha,
        lines=reader.lines,
        frames=reader.frames,
        first_t=first.t if first else None,
        last_t=last.t if last else None,
        first_m=first.m if first else None,
        last_m=last.m if last else None,
        closed_ns=time.time_ns(),
        closed_by="recovered",
        recovered=True,
        truncated=reader.truncated,
        readable_bytes=reader.readable_bytes,
        problem=reader.problem,
    )
    write_manifest(seg.path, manifest)
    return manifest
