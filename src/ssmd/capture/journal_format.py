"""Raw journal line format and segment naming (DESIGN.md §7); pure, no I/O.

Kept free of I/O and of other ssmd imports so `ssmd.venues.recording` (pure) can read
journal lines through it: one definition of the format for writer, reader and replay.

Line: one JSON object, `{"t": ts_recv_ns, "m": mono_ns, "c": conn, "d": direction, "p":
payload}` then `\\n`. `p` is the frame as a JSON string. A payload that is not valid
UTF-8 is stored as `"b": base64` (RFC 4648, padded) *instead of* `p`, so it round-trips
byte for byte and a reader that only knows `p` fails loudly rather than misreading it.
An optional `"u"` holds the URL of a `rest` line. For hand-written journals `p` may be
any JSON value; it then stands for its own JSON text.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import msgspec

SCHEMA_VERSION = 1
"""Version of the line format and manifest; bump on any incompatible change."""

Direction = Literal["in", "out", "open", "close", "error", "rest"]
DIRECTIONS: tuple[str, ...] = ("in", "out", "open", "close", "error", "rest")
SUFFIX = ".jsonl.zst"
HOUR_NS = 3_600_000_000_000

__all__ = [
    "DIRECTIONS",
    "SCHEMA_VERSION",
    "SUFFIX",
    "Direction",
    "JournalCorrupt",
    "JournalError",
    "JournalLine",
    "append_line",
    "decode_line",
    "encode_line",
    "iter_lines",
    "parse_segment_name",
    "payload_field",
    "segment_path",
]


class JournalError(Exception):
    """The journal cannot write or read a file: the connector must stop (exit non-zero).

    Deliberately not an OSError, so a reconnect loop that catches network OSErrors can
    never swallow a full disk.
    """

    def __init__(self, path: Path | str, errno: int | None, message: str) -> None:
        self.path = Path(path)
        self.errno = errno
        code = f" [errno {errno}]" if errno is not None else ""
        super().__init__(f"journal: {message}: {path}{code}")


class JournalCorrupt(JournalError):
    """Bytes that are present but do not decode (not mere truncation)."""


class JournalLine(NamedTuple):
    """One decoded journal line."""

    t: int
    """ts_recv, ns since the epoch."""
    m: int
    """Monotonic clock, ns (same process only)."""
    c: int | str
    """Connection number within the shard."""
    d: str
    """Direction: in, out, open, close, error (rest for REST bodies)."""
    payload: str | bytes
    """The frame: str if it was stored as text (`p`), bytes if binary (`b`)."""
    url: str = ""

    @property
    def data(self) -> bytes:
        """The payload as bytes, exactly as received (text is UTF-8)."""
        p = self.payload
        return p if isinstance(p, bytes) else p.encode("utf-8", "surrogatepass")

    @property
    def text(self) -> str:
        """The payload as str; binary bytes map losslessly via surrogateescape."""
        p = self.payload
        return p if isinstance(p, str) else p.decode("utf-8", "surrogateescape")


# -- encoding -----------------------------------------------------------------------

_enc = msgspec.json.encode
_LINE = b'{"t":%d,"m":%d%s%s}\n'


def append_line(buf: bytearray, t: int, m: int, frag: bytes, payload: bytes | str) -> bool:
    """The writer's hot path: `encode_line`'s bytes for a text payload appended to `buf`
    (`frag` = `,"c":…,"d":"…","p":`); False, `buf` unchanged, for anything else (the
    caller then writes `encode_line`). The reference of `_native.journal_line`."""
    try:
        text = payload if type(payload) is str else payload.decode()  # type: ignore[union-attr]
        buf += _LINE % (t, m, frag, _enc(text))
    except (UnicodeError, AttributeError):  # not UTF-8, surrogates, memoryview
        return False
    return True


def append_lines(
    buf: bytearray,
    frames: list[tuple[bytes, int, int]],
    start: int,
    frag: bytes,
    path: Any,
    n: int,
    floor: int,
    deadline: int,
    chunk: int,
    out: list[Any],
    pos_type: type[tuple[Any, ...]],
) -> int:
    """`append_line` for a socket read's (payload, ts, mono) frames from `start` on, each
    line's position `pos_type((path, n))` (n counting on) added to `out`. Stops at a frame
    whose ts is outside [floor, deadline) or that `append_line` declines (not appended),
    or after the line that fills `buf` to `chunk`; returns the index of the first frame
    not appended. The reference of `_native.journal_lines`."""
    for i in range(start, len(frames)):
        payload, ts, mono = frames[i]
        if not (floor <= ts < deadline and append_line(buf, ts, mono, frag, payload)):
            return i
        out.append(tuple.__new__(pos_type, (path, n + i - start)))
        if len(buf) >= chunk:
            return i + 1
    return len(frames)


def encode_line(t: int, m: int, c: int, d: str, payload: bytes | str, url: str = "") -> bytes:
    """One journal line, newline-terminated. The writer inlines the same steps."""
    if d not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {d!r}")
    body = payload_field(payload)
    u = b',"u":' + _enc(url) if url else b""
    return b'{"t":%d,"m":%d,"c":%d,"d":"%s",%s%s}\n' % (t, m, c, d.encode(), body, u)


def payload_field(payload: bytes | str) -> bytes:
    """`"p":"…"` for text, `"b":"base64"` for bytes that are not UTF-8."""
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            return b'"p":' + _enc(bytes(payload).decode())
        except UnicodeDecodeError:
            return b'"b":"' + base64.b64encode(payload) + b'"'
    try:
        return b'"p":' + _enc(payload)
    except UnicodeEncodeError:  # lone surrogates: keep the code units, as bytes
        return b'"b":"' + base64.b64encode(payload.encode("utf-8", "surrogatepass")) + b'"'


# -- decoding -----------------------------------------------------------------------


class _Fast(msgspec.Struct):
    t: int
    d: str
    m: int = 0
    c: int | str = 0
    p: str | None = None
    b: bytes | None = None
    u: str = ""


class _Any(msgspec.Struct):
    t: int
    d: str
    m: int = 0
    c: int | str = 0
    p: msgspec.Raw = msgspec.Raw(b"")
    b: bytes | None = None
    u: str = ""


_fast = msgspec.json.Decoder(_Fast)
_tuple_new = tuple.__new__
_any = msgspec.json.Decoder(_Any)


def decode_line(line: bytes | str) -> JournalLine:
    """Decode one line; raises ValueError (msgspec.DecodeError) when it is not one."""
    try:
        r = _fast.decode(line)
        payload: str | bytes | None = r.p if r.p is not None else r.b
    except msgspec.ValidationError:
        a = _any.decode(line)  # `p` is some other JSON value: its text is the frame
        r = a  # type: ignore[assignment]
        payload = bytes(a.p).decode() if len(a.p) else a.b
    if payload is None:
        raise msgspec.ValidationError("journal line has neither `p` nor `b`")
    return _tuple_new(JournalLine, (r.t, r.m, r.c, r.d, payload, r.u))  # NamedTuple() is slow


def iter_lines(lines: Iterable[str | bytes]) -> Iterator[JournalLine]:
    """Decode journal lines, skipping blank ones."""
    for line in lines:
        if line.strip():
            yield decode_line(line)


# -- naming -------------------------------------------------------------------------


def segment_path(root: Path, env: str, feed: str, shard: int, conn: int, start_ns: int) -> Path:
    """`{root}/raw/{env}/{feed}/{YYYY-MM-DD}/{HH}/{shard}-{conn}-{start_ns}.jsonl.zst`."""
    when = datetime.fromtimestamp(start_ns // 1_000_000_000, UTC)
    return (
        Path(root)
        / "raw"
        / env
        / feed
        / when.strftime("%Y-%m-%d")
        / when.strftime("%H")
        / f"{shard}-{conn}-{start_ns}{SUFFIX}"
    )


class SegmentName(NamedTuple):
    shard: int
    conn: int
    start_ns: int


def parse_segment_name(name: str) -> SegmentName | None:
    """`3-1-1709287200000000000.jsonl.zst` -> (3, 1, 1709287200000000000); else None."""
    if not name.endswith(SUFFIX):
        return None
    parts = name[: -len(SUFFIX)].split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return SegmentName(int(parts[0]), int(parts[1]), int(parts[2]))
