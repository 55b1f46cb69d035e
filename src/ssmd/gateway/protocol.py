"""The `/v1/stream` WebSocket protocol: pure parsing, validation and message building.

Why pure: every byte a client sends is hostile until proven otherwise. Parsing never
raises anything but `ProtocolError` (which becomes one `error` frame), so malformed input
can never take the connection handler, let alone the gateway, down. The fuzz tests hammer
`parse` directly and through a real socket.

Server → client text frames hold one or more JSON messages separated by `\\n` (JSON
Lines): under load the writer packs many records into one frame, which is what makes
fan-out to many clients affordable (docs/api.md, "WebSocket /v1/stream").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ssmd.model.records import RECORD_TYPES
from ssmd.model.time import format_ns, parse_time

MAX_FRAME_BYTES = 64 * 1024
MAX_ID_CHARS = 64
MAX_SYMBOLS = 1000
MAX_SYMBOL_CHARS = 128
MAX_SUBSCRIPTIONS = 100
GLOB_CHARS = frozenset("*?[")
_FEED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ID_TEXT = re.compile(r"^[\x21-\x7e]{1,64}$")  # printable ASCII, no spaces

SubId = str | int
"""A subscription id as the client sent it (echoed back exactly)."""

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class ProtocolError(Exception):
    """What is wrong with a client message: one `error` frame, the connection stays."""

    def __init__(self, code: str, message: str, sub_id: SubId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sub_id = sub_id


@dataclass(frozen=True)
class Subscribe:
    id: SubId
    feed: str
    types: tuple[str, ...] | None
    """None = every type the client is entitled to (narrowed, see docs/api.md)."""
    symbols: tuple[str, ...]
    from_ns: int | None = None
    transform: str | None = None


@dataclass(frozen=True)
class Unsubscribe:
    id: SubId


@dataclass(frozen=True)
class Ping:
    echo: Any = None


ClientMessage = Subscribe | Unsubscribe | Ping
_FIELDS = {
    "subscribe": {"op", "id", "feed", "types", "symbols", "from", "transform"},
    "unsubscribe": {"op", "id"},
    "ping": {"op", "id"},
}


def parse(frame: str | bytes, *, now_ns: int | None = None) -> ClientMessage:
    """One client frame → a message; ProtocolError says exactly what is wrong."""
    size = len(frame.encode() if isinstance(frame, str) else frame)
    if size > MAX_FRAME_BYTES:
        raise ProtocolError("frame_too_large", f"frame of {size} bytes > {MAX_FRAME_BYTES}")
    try:
        obj = _decoder.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError("bad_json", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_request", f"a message is a JSON object, got {_kind(obj)}")
    op = obj.get("op")
    sub_id = _maybe_id(obj.get("id"))
    if not isinstance(op, str):
        raise ProtocolError("bad_request", "missing 'op' (subscribe, unsubscribe or ping)", sub_id)
    if op not in _FIELDS:
        raise ProtocolError(
            "unknown_op", f"unknown op {_short(op)}: use subscribe, unsubscribe or ping", sub_id
        )
    extra = sorted(set(obj) - _FIELDS[op])
    if extra:
        raise ProtocolError("bad_request", f"{op}: unknown field(s) {', '.join(extra)}", sub_id)
    if op == "ping":
        return Ping(obj.get("id"))
    sid = _id(obj.get("id"), op)
    if op == "unsubscribe":
        return Unsubscribe(sid)
    return _subscribe(obj, sid, now_ns)


def _subscribe(obj: dict[str, Any], sid: SubId, now_ns: int | None) -> Subscribe:
    feed = obj.get("feed")
    if not isinstance(feed, str) or not _FEED.match(feed):
        raise ProtocolError(
            "bad_request", f"subscribe: 'feed' must be a feed name, got {_short(feed)}", sid
        )
    types: tuple[str, ...] | None = None
    if obj.get("types") is not None:
        raw = obj["types"]
        if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
            raise ProtocolError(
                "bad_request", "subscribe: 'types' must be a non-empty list of strings", sid
            )
        bad = [t for t in raw if t not in RECORD_TYPES]
        if bad:
            raise ProtocolError(
                "bad_request",
                f"subscribe: unknown record type(s) {', '.join(map(_short, bad))} "
                f"(known: {', '.join(RECORD_TYPES)})",
                sid,
            )
        types = tuple(dict.fromkeys(raw))
    symbols = obj.get("symbols", ["*"])
    if not isinstance(symbols, list) or not symbols:
        raise ProtocolError(
            "bad_request", "subscribe: 'symbols' must be a non-empty list of symbols/globs", sid
        )
    if len(symbols) > MAX_SYMBOLS:
        raise ProtocolError("bad_request", f"subscribe: more than {MAX_SYMBOLS} symbols", sid)
    for s in symbols:
        if not isinstance(s, str) or not s.strip() or len(s) > MAX_SYMBOL_CHARS:
            raise ProtocolError(
                "bad_request",
                f"subscribe: a symbol is a non-empty string of at most {MAX_SYMBOL_CHARS} "
                f"characters, got {_short(s)}",
                sid,
            )
    from_ns = None
    if obj.get("from") is not None:
        from_ns = _time(obj["from"], sid, now_ns)
    transform = obj.get("transform")
    if transform is not None and (not isinstance(transform, str) or not _NAME.match(transform)):
        raise ProtocolError(
            "bad_request", f"subscribe: 'transform' must be a name, got {_short(transform)}", sid
        )
    return Subscribe(sid, feed, types, tuple(dict.fromkeys(symbols)), from_ns, transform)


def _time(value: Any, sid: SubId, now_ns: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProtocolError(
            "bad_request", f"subscribe: 'from' is ns or ISO-8601, got {_short(value)}", sid
        )
    try:
        ns = parse_time(value)
    except (ValueError, OverflowError) as exc:
        raise ProtocolError("bad_request", f"subscribe: 'from': {exc}", sid) from None
    if ns < 0 or ns >= 2**63:
        raise ProtocolError("bad_request", f"subscribe: 'from' out of range: {ns}", sid)
    if now_ns is not None and ns > now_ns + 5 * 10**9:
        raise ProtocolError(
            "bad_request", f"subscribe: 'from' ({format_ns(ns)}) is in the future", sid
        )
    return ns


def _id(value: Any, op: str) -> SubId:
    if value is None:
        raise ProtocolError("bad_request", f"{op}: missing 'id' (a string or an integer)")
    sid = _maybe_id(value)
    if sid is None:
        raise ProtocolError(
            "bad_request",
            f"{op}: 'id' must be an integer or 1-{MAX_ID_CHARS} printable ASCII characters "
            f"without spaces, got {_short(value)}",
        )
    return sid


def _maybe_id(value: Any) -> SubId | None:
    """The id if it is a valid one (so an error about another field can name it)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and -(2**53) < value < 2**53:
        return value
    if isinstance(value, str) and _ID_TEXT.match(value):
        return value
    return None


def _kind(obj: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number"}.get(
        type(obj), "null" if obj is None else type(obj).__name__
    )


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def has_glob(symbol: str) -> bool:
    return any(c in GLOB_CHARS for c in symbol)


# -- server messages -------------------------------------------------------------------


def encode(msg: dict[str, Any]) -> bytes:
    return _encoder.encode(msg)


def error(code: str, message: str, sub_id: SubId | None = None) -> bytes:
    out: dict[str, Any] = {"op": "error"}
    if sub_id is not None:
        out["id"] = sub_id
    out["code"] = code
    out["message"] = message
    return encode(out)


def heartbeat(ts_ns: int) -> bytes:
    return encode({"op": "heartbeat", "ts": ts_ns})


def pong(ts_ns: int, echo: Any = None) -> bytes:
    out: dict[str, Any] = {"op": "pong", "ts": ts_ns}
    if echo is not None:
        out["id"] = echo
    return encode(out)


@dataclass
class Granted:
    """What a subscription was granted, as the `subscribed` reply says."""

    id: SubId
    feed: str
    types: tuple[str, ...]
    symbols: tuple[str, ...]
    entitled_symbols: tuple[str, ...]
    narrowed: bool
    from_ns: int | None
    transform: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    def message(self) -> bytes:
        out: dict[str, Any] = {
            "op": "subscribed",
            "id": self.id,
            "feed": self.feed,
            "types": list(self.types),
            "symbols": list(self.symbols),
            "entitled_symbols": list(self.entitled_symbols),
            "narrowed": self.narrowed,
        }
        if self.from_ns is not None:
            out["from"] = self.from_ns
        if self.transform is not None:
            out["transform"] = self.transform
        out.update(self.extra)
        return encode(out)


def record_prefix(sub_id: SubId) -> bytes:
    """Bytes that turn a record's wire JSON `{...}` into `{"id":<id>,...}`.

    Splicing instead of decode/encode keeps fan-out at one bytes concat per delivery.
    """
    return b'{"id":' + _encoder.encode(sub_id) + b","


def tag_record(prefix: bytes, payload: bytes) -> bytes | None:
    """The record payload with the subscription id spliced in; None if it is not an object."""
    if len(payload) < 3 or payload[:1] != b"{":
        return None
    return prefix + payload[1:]
