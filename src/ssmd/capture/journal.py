"""Raw journal writer (DESIGN.md §7): every frame, with its receive time, first.

One `Journal` per connection. `write` is synchronous and cheap (the line appended to a
buffer by one C call, `_native.journal_line`; `append_line` without the extension); every
64 KiB the buffer goes to the segment file as one zstd *frame*, and so does what it holds
once `flush_interval_s` has passed, so the file is a sequence of complete frames: a kill
-9 loses only what was still in this process's buffer, and every file stays readable.

The flush deadline is checked on the hot path against the frame's ts_recv (one compare
shared with rotation, no clock call); `tick()`, called by the owner's timer, is the
backstop on the monotonic clock for idle connections and wall-clock steps.

Segments rotate by age (`rotate_ns`), by compressed size (`rotate_bytes`, checked each
time output reaches the file, so a segment may pass it by about one zstd block), and
when ts_recv leaves the UTC hour of the path. Closing = end frame, fsync, manifest
(tmp + fsync + rename), fsync(dir). An open segment holds an exclusive flock, so
`seal_orphans` never seals a segment a live writer still owns.

Any OSError (ENOSPC, EACCES, EROFS, EFBIG, EIO) becomes a `JournalError` naming the
path and errno, and the journal refuses every later write: the connector must exit.
The reading side (`iter_segment`, `verify_segment`, `list_segments`, `seal_orphans`…)
is re-exported here so callers import one module.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import zstandard

from ssmd.capture.journal_format import (
    DIRECTIONS,
    HOUR_NS,
    SCHEMA_VERSION,
    Direction,
    JournalCorrupt,
    JournalError,
    JournalLine,
    append_line,
    append_lines,
    decode_line,
    encode_line,
    iter_lines,
    parse_segment_name,
    segment_path,
)
from ssmd.capture.journal_manifest import Manifest, manifest_path, read_manifest, write_manifest
from ssmd.capture.journal_read import (
    SegmentInfo,
    SegmentReader,
    Verdict,
    iter_segment,
    list_segments,
    open_segments,
    seal_orphans,
    verify_segment,
)
from ssmd.model.native import _native

__all__ = [
    "SCHEMA_VERSION",
    "Direction",
    "Journal",
    "JournalCorrupt",
    "JournalError",
    "JournalLine",
    "Manifest",
    "SegmentInfo",
    "SegmentPos",
    "SegmentReader",
    "Verdict",
    "decode_line",
    "encode_line",
    "iter_lines",
    "iter_segment",
    "list_segments",
    "manifest_path",
    "open_segments",
    "parse_segment_name",
    "read_manifest",
    "seal_orphans",
    "segment_path",
    "verify_segment",
]

CHUNK = 64 * 1024
"""Uncompressed bytes buffered before they go to the file as one zstd frame."""
_NEVER = -(1 << 62)
"""A deadline every ts_recv passes: the next write opens (or refuses) a segment."""
_append = append_line if _native is None else _native.journal_line
"""Appends a text frame's line to the buffer; False: the general path (`encode_line`)."""
_append_lines = append_lines if _native is None else _native.journal_lines
"""Appends a read's common lines to the buffer (`journal_format.append_lines`)."""
_tuple_new = tuple.__new__


class SegmentPos(NamedTuple):
    """Where a line went: replay with `iter_segment(path, start_line=line)`."""

    path: Path
    line: int


class Journal:
    """Writer of one connection's raw journal: segments under `{root}/raw/{env}/{feed}/`."""

    def __init__(
        self,
        root: Path,
        env: str,
        feed: str,
        shard: int,
        conn: int,
        *,
        rotate_ns: int,
        rotate_bytes: int,
        flush_interval_s: float = 1.0,
        level: int = 3,
        fsync_on_flush: bool = False,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if rotate_ns <= 0 or rotate_bytes <= 0 or flush_interval_s <= 0:
            raise ValueError("rotate_ns, rotate_bytes and flush_interval_s must be > 0")
        self.root, self.env, self.feed = Path(root), env, feed
        self.shard, self.conn = shard, conn
        self._rotate_ns, self._rotate_bytes = rotate_ns, rotate_bytes
        self._flush_every = int(flush_interval_s * 1e9)
        self._fsync_on_flush = fsync_on_flush
        self._clock = clock
        self._cctx = zstandard.ZstdCompressor(level=level, write_checksum=True)
        self._frag = {d: b',"c":%d,"d":"%s","p":' % (conn, d.encode()) for d in DIRECTIONS}
        self._buf = bytearray()
        self._path: Path | None = None
        self._fd = -1
        self._deadline = _NEVER
        self._floor = 0
        self._n = self._n_framed = 0
        self._rotate_at = _NEVER
        self._flushed_mono = 0
        self._closed = False
        self._failed: JournalError | None = None
        self.manifests: list[Manifest] = []
        """Manifests of the segments this writer closed, in order."""

    # -- hot path ---------------------------------------------------------------------

    def write(
        self,
        ts_recv_ns: int,
        mono_ns: int,
        direction: Direction,
        payload: bytes | str,
        url: str = "",
    ) -> SegmentPos:
        """Append one frame; returns where it went. Raises JournalError on I/O failure."""
        try:
            frag = self._frag[direction]
        except KeyError:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}") from None
        if ts_recv_ns >= self._deadline or ts_recv_ns < self._floor:
            self._due(ts_recv_ns, mono_ns)  # no segment, time to rotate, or to flush
        if url or not _append(self._buf, ts_recv_ns, mono_ns, frag, payload):
            self._buf += encode_line(ts_recv_ns, mono_ns, self.conn, direction, payload, url)
        n = self._n
        self._n = n + 1
        self._last_t, self._last_m = ts_recv_ns, mono_ns
        path = self._path
        if len(self._buf) >= CHUNK:
            self._spill()  # may seal the segment (size): `path` is where the line went
        return _tuple_new(SegmentPos, (path, n))  # skips NamedTuple's slow __new__

    def write_in(self, frames: Sequence[tuple[bytes, int, int]]) -> list[SegmentPos]:
        """`write(ts, mono, "in", payload)` for each (payload, ts, mono) of one socket
        read, in order, returning where each went: the frames' hot path. The common
        lines are appended by one call (`_append_lines`, C where built) until one is not
        common (a deadline passed, a payload C declines: `write` itself takes it) or the
        buffer is full (spilled as one zstd frame)."""
        frames = frames if type(frames) is list else list(frames)
        out: list[SegmentPos] = []
        i, end, frag = 0, len(frames), self._frag["in"]
        while i < end:
            j = _append_lines(self._buf, frames, i, frag, self._path, self._n, self._floor,
                              self._deadline, CHUNK, out, SegmentPos)  # fmt: skip
            if j > i:
                self._n += j - i
                _, self._last_t, self._last_m = frames[j - 1]
                if len(self._buf) >= CHUNK:
                    self._spill()
                    i = j
                    continue
            if j < end:
                payload, ts, mono = frames[j]
                out.append(self.write(ts, mono, "in", payload))
                j += 1
            i = j
        return out

    # -- public control ---------------------------------------------------------------

    def flush(self) -> None:
        """End the current zstd frame: everything written so far is readable on disk."""
        if self._failed is not None:
            raise self._failed
        if self._path is not None and self._n > self._n_framed:
            self._end_frame(self._last_t)
            self._check_size()

    def tick(self, now_ns: int | None = None) -> None:
        """Call from a timer (≤ flush interval): flushes an idle connection's tail and
        closes its segment once its time is up, so quiet feeds still ship."""
        if self._failed is not None:
            raise self._failed
        if self._path is None:
            return
        now = time.time_ns() if now_ns is None else now_ns
        if now >= self._rotate_at or now < self._floor:
            self._seal(self._why(now))
        elif now >= self._deadline or self._clock() - self._flushed_mono >= self._flush_every:
            self.flush()

    def close(self) -> None:
        """Seal the open segment (manifest included). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._failed is not None:
            self._drop_fd()
            return
        if self._path is not None:
            self._seal("close")
        self._deadline = _NEVER

    @property
    def path(self) -> Path | None:
        """The open segment, if any."""
        return self._path

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- segments ---------------------------------------------------------------------

    def _due(self, t: int, m: int) -> None:
        """Slow path of `write`: flush when ts_recv passed the frame's deadline (tick()
        is the monotonic backstop), then open or rotate the segment if needed."""
        if self._failed is not None:
            raise self._failed
        if self._path is not None and self._rotate_at > t >= self._floor:
            if self._n > self._n_framed:
                self._end_frame(t)
                self._check_size()
            else:
                self._deadline = min(self._rotate_at, t + self._flush_every)
        if self._path is None or t >= self._rotate_at or t < self._floor:
            self._roll(t, m)

    def _roll(self, t: int, m: int) -> None:
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise JournalError(self.root, None, "write after close")
        if self._path is not None:
            self._seal(self._why(t))
        self._open(t, m)

    def _why(self, t: int) -> str:
        return "time" if t >= self._start + self._rotate_ns else "hour"

    def _open(self, t: int, m: int) -> None:
        start = t
        while True:
            path = segment_path(self.root, self.env, self.feed, self.shard, self.conn, start)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                start += 1  # same first ts as an earlier segment: next free name
                continue
            except OSError as e:
                self._path = path
                self._fail(e, "create segment")
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            self._path = path
            self._fail(e, "lock segment")
        self._fd, self._path, self._start = fd, path, start
        self._n = self._n_framed = 0
        self._first_t, self._first_m = t, m
        self._size = self._frames = 0
        self._sha = hashlib.sha256()
        self._floor = start - start % HOUR_NS
        self._rotate_at = min(start + self._rotate_ns, self._floor + HOUR_NS)
        self._deadline = min(self._rotate_at, t + self._flush_every)
        self._flushed_mono = self._clock()

    def _seal(self, reason: str) -> None:
        assert self._path is not None
        path = self._path
        if self._n > self._n_framed:
            self._end_frame(self._last_t)
        try:
            os.fsync(self._fd)
        except OSError as e:
            self._fail(e, "fsync segment")
        manifest = Manifest(
            env=self.env,
            feed=self.feed,
            shard=self.shard,
            conn=self.conn,
            segment=path.name,
            key=path.relative_to(self.root).as_posix(),
            start_ns=self._start,
            size=self._size,
            sha256=self._sha.hexdigest(),
            lines=self._n,
            frames=self._frames,
            first_t=self._first_t,
            last_t=self._last_t,
            first_m=self._first_m,
            last_m=self._last_m,
            closed_ns=time.time_ns(),
            closed_by=reason,
            readable_bytes=self._size,
        )
        try:
            write_manifest(path, manifest)
        except JournalError as e:
            self._failed = e
            self._deadline = _NEVER
            self._drop_fd()
            raise
        self._drop_fd()  # after the manifest: the flock covers the whole close
        self.manifests.append(manifest)
        self._path = None
        self._deadline = _NEVER
        self._floor = 0

    # -- bytes ------------------------------------------------------------------------

    def _spill(self) -> None:
        """A full buffer becomes a zstd frame of its own: on disk whole at once (a crash
        loses at most the buffer), and one-shot compression costs ~25 % less than feeding
        a stream (~3 % in ratio; bench/RESULTS.md journal)."""
        self._frame_out()
        self._check_size()

    def _frame_out(self) -> None:
        self._out(self._cctx.compress(self._buf))
        self._buf.clear()
        self._frames += 1
        self._n_framed = self._n

    def _check_size(self) -> None:
        if self._size >= self._rotate_bytes:
            self._seal("size")

    def _end_frame(self, t: int) -> None:
        self._frame_out()
        if self._fsync_on_flush:
            try:
                os.fsync(self._fd)
            except OSError as e:
                self._fail(e, "fsync segment")
        self._flushed_mono = self._clock()
        self._deadline = min(self._rotate_at, t + self._flush_every)

    def _out(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as e:
            self._fail(e, "write segment")
        self._size += len(data)
        self._sha.update(data)

    def _fail(self, e: OSError, what: str) -> None:
        err = JournalError(self._path or self.root, e.errno, f"cannot {what} ({e.strerror})")
        self._failed = err
        self._deadline = _NEVER
        self._buf.clear()
        self._drop_fd()
        raise err from e

    def _drop_fd(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):  # the error that got us here is the one
                os.close(fd)
