"""The NATS client protocol as bytes: server URLs, CONNECT, and a pure frame parser.

Shared by our own publisher and subscriber, which speak the protocol on one asyncio
connection each instead of going through nats-py (its per-message objects cost more than
the work they carry at market-data rates). No I/O here: the parser turns chunks of a
byte stream, however split, into frames; `Link` only hands a transport's events on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

CRLF = b"\r\n"
MAX_LINE = 64 << 10
"""A control line longer than this without CRLF is a broken stream, not a slow one."""
MAX_PAYLOAD = 64 << 20
"""nats-server's hard limit on max_payload: a larger size is a broken stream (waiting for
it would buffer without end)."""

Msg = tuple[int, bytes, bytes, bytes, bytes]
"""(sid, subject, reply or b"", header block or b"", payload) of one MSG / HMSG."""


class WireError(ValueError):
    """The byte stream is not the NATS protocol (the connection must be dropped)."""


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str | None
    password: str | None
    token: str | None

    @property
    def where(self) -> str:
        return f"nats://{self.host}:{self.port}"


def parse_servers(servers: str | Sequence[str]) -> list[Server]:
    """`nats://[user:pass@|token@]host:port`, comma-separated or a list."""
    urls = servers.split(",") if isinstance(servers, str) else list(servers)
    out = []
    for url in urls:
        parts = urlsplit(url.strip() if "://" in url else f"nats://{url.strip()}")
        if parts.scheme not in ("nats", ""):
            raise ValueError(f"unsupported NATS URL scheme in {url!r} (nats:// only, no TLS)")
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        token = user if user and password is None else None
        out.append(
            Server(
                parts.hostname or "127.0.0.1",
                parts.port or 4222,
                None if token else user,
                password,
                token,
            )
        )
    if not out:
        raise ValueError("no NATS server URL given")
    return out


def connect_command(server: Server, name: str) -> bytes:
    """`CONNECT {...}\\r\\n` with headers and no-responders on, credentials from the URL."""
    connect: dict[str, object] = {
        "verbose": False, "pedantic": False, "headers": True, "no_responders": True,
        "lang": "python-ssmd", "version": "1", "protocol": 1, "name": name,
    }  # fmt: skip
    if server.user:
        connect |= {"user": server.user, "pass": server.password or ""}
    if server.token:
        connect["auth_token"] = server.token
    return b"CONNECT " + json.dumps(connect).encode() + CRLF


class Owner(Protocol):
    def _received(self, epoch: int, data: bytes) -> None: ...
    def _lost(self, epoch: int, exc: Exception | None) -> None: ...


class Link(asyncio.Protocol):
    """Transport glue: hands bytes to the owner, tagged with the connection epoch (events
    of a dropped connection arrive late and must be told apart)."""

    def __init__(self, owner: Owner, epoch: int) -> None:
        self.owner, self.epoch = owner, epoch
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.owner._received(self.epoch, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost(self.epoch, exc)


class FrameParser:
    """Chunks of the server's byte stream → whole frames, in order.

    `feed` returns the messages (`Msg`) and the other lines (PING, PONG, INFO …, +OK,
    -ERR …) completed by the chunk; a partial frame waits for the next chunk. Why one
    pass over a whole read: the subscriber hands every message of a read to its consumer
    at once instead of one object and callback per message.
    """

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    @property
    def buffered(self) -> int:
        return len(self._rest)

    def feed(self, data: bytes) -> tuple[list[Msg], list[bytes]]:
        buf = self._rest + data if self._rest else data
        msgs: list[Msg] = []
        lines: list[bytes] = []
        pos, end = 0, len(buf)
        find = buf.find
        while pos < end:
            i = find(CRLF, pos)
            if i < 0:
                if end - pos > MAX_LINE:
                    raise WireError(f"no line end in {end - pos} bytes: {buf[pos : pos + 40]!r}")
                break
            op = buf[pos : pos + 1]
            if op == b"M" or op == b"H":
                args = buf[pos:i].split()
                try:
                    msg, stop = _message(args, buf, i + 2, end)
                except (ValueError, IndexError):
                    raise WireError(f"bad message line {buf[pos:i][:200]!r}") from None
                if msg is None:
                    break  # the payload is not complete yet
                msgs.append(msg)
                pos = stop
                continue
            line = buf[pos:i]
            if line[:4] not in _OPS:
                raise WireError(f"unknown protocol line {line[:200]!r}")
            lines.append(line)
            pos = i + 2
        self._rest = buf[pos:]
        return msgs, lines


_OPS = frozenset((b"PING", b"PONG", b"INFO", b"+OK", b"-ERR"))


def _message(args: list[bytes], buf: bytes, start: int, end: int) -> tuple[Msg | None, int]:
    """MSG <subject> <sid> [reply] <size> | HMSG <subject> <sid> [reply] <hdr> <total>;
    (None, start) while the payload and its CRLF have not all arrived."""
    if args[0] == b"MSG" and len(args) in (4, 5):
        hlen, total, reply = 0, int(args[-1]), args[3] if len(args) == 5 else b""
    elif args[0] == b"HMSG" and len(args) in (5, 6):
        hlen, total, reply = int(args[-2]), int(args[-1]), args[3] if len(args) == 6 else b""
    else:
        raise ValueError("not a message line")
    if not 0 <= hlen <= total <= MAX_PAYLOAD:
        raise ValueError("bad sizes")
    stop = start + total
    if stop + 2 > end:
        return None, start
    if buf[stop : stop + 2] != CRLF:
        raise ValueError("payload not followed by CRLF")
    msg = (int(args[2]), args[1], reply, buf[start : start + hlen], buf[start + hlen : stop])
    return msg, stop + 2
