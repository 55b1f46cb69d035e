"""`Stream`: an async iterator over `/v1/stream` that survives disconnects.

Decisions:

- **resume-by-ts_recv**: the protocol has no client-visible sequence, so after a drop
  the client subscribes again with `from` = (largest ts_recv seen) − `overlap_ns`
  (default 2 s); the gateway replays from the stream and goes live without a seam.
  Records already yielded are dropped by identity — the exact wire bytes of the record
  (the stream stores each record once, so equal bytes = the same record). Records that
  arrive more than `overlap_ns` out of ts_recv order around a drop can be missed.
  Before any record, the resume point is `start`, else the time of the first
  subscription.
- **errors-raise, gaps-are-records**: an `error` frame that reconnecting cannot fix
  (bad subscription, not entitled, bad key, failed transform) raises a typed
  `ClientError` (`AuthenticationError`, `PermissionDenied`, `StreamError`). `gap`
  records are yielded like any record (`ssmd.model.Gap`). With `events=True` the
  iterator also yields `ssmd.client.events` (subscribed, live, book_unknown,
  reconnecting).
- **bounded backoff**: reconnects wait `initial_backoff`·2^n (jittered, at most
  `max_backoff`), up to `max_attempts` in a row (None = forever); silence longer than
  `idle_timeout` (the server beats every 5 s) counts as a drop.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ssmd.client.errors import (
    AuthenticationError,
    ClientError,
    PermissionDenied,
    StreamError,
    Unavailable,
    for_stream_code,
)
from ssmd.client.events import BookUnknown, Event, Live, Reconnecting, Subscribed
from ssmd.model.codec import from_wire
from ssmd.model.records import Record
from ssmd.model.time import now_ns

RETRYABLE_CODES = frozenset({"unavailable", "replay_failed"})
"""Error frames a reconnect may fix (a stream not provisioned yet, NATS trouble)."""
SUB_ID = "ssmd-client"

_decoder = msgspec.json.Decoder()


class _Drop(Exception):
    """The connection is unusable; reconnect (after backoff)."""


def ws_url(http_url: str) -> str:
    base = http_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + "/v1/stream"


class Stream:
    """`async for item in client.stream(...)`: records (and events, if asked)."""

    def __init__(
        self,
        url: str,
        api_key: str | None,
        feed: str,
        *,
        types: Sequence[str] | None = None,
        symbols: Sequence[str] = ("*",),
        start: int | None = None,
        transform: str | None = None,
        events: bool = False,
        reconnect: bool = True,
        max_attempts: int | None = None,
        initial_backoff: float = 0.25,
        max_backoff: float = 30.0,
        idle_timeout: float = 30.0,
        overlap_ns: int = 2 * 10**9,
    ) -> None:
        self.url = ws_url(url)
        self.api_key = api_key
        self.feed, self.types, self.symbols = feed, list(types or []) or None, list(symbols)
        self.start, self.transform = start, transform
        self.events, self.reconnect, self.max_attempts = events, reconnect, max_attempts
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.idle_timeout, self.overlap_ns = idle_timeout, overlap_ns
        self.max_ts_recv: int | None = None
        """Largest ts_recv yielded so far (the resume point)."""
        self.since: int | None = start
        self.connections = 0
        self.duplicates = 0
        """Records dropped as already yielded (after reconnects)."""
        self._seen: set[str] = set()
        self._order: deque[tuple[int, str]] = deque()
        self._ws: ClientConnection | None = None
        self._closing = False
        self._gen: AsyncIterator[Record | Event] | None = None

    # -- public -------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Record | Event]:
        if self._gen is None:
            self._gen = self._run()
        return self._gen

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop: close the socket; the iterator ends."""
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._gen is not None:
            await self._gen.aclose()  # type: ignore[attr-defined]

    def resume_from(self) -> int | None:
        if self.max_ts_recv is not None:
            return self.max_ts_recv - self.overlap_ns
        return self.since

    # -- the loop -----------------------------------------------------------------------

    async def _run(self) -> AsyncIterator[Record | Event]:
        failures = 0
        while not self._closing:
            try:
                async for item in self._session():
                    failures = 0
                    yield item
                reason = "closed by the server"
            except _Drop as exc:
                reason = str(exc)
            if self._closing:
                return
            failures += 1
            if not self.reconnect or (
                self.max_attempts is not None and failures > self.max_attempts
            ):
                raise Unavailable(f"stream {self.url}: {reason}")
            delay = min(self.max_backoff, self.initial_backoff * 2 ** (failures - 1))
            delay *= 0.5 + random.random() / 2
            if self.events:
                yield Reconnecting(failures, delay, reason, self.resume_from())
            await asyncio.sleep(delay)

    async def _session(self) -> AsyncIterator[Record | Event]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            async with connect(
                self.url, additional_headers=headers, max_size=None, open_timeout=10
            ) as ws:
                self._ws = ws
                self.connections += 1
                await ws.send(self._subscribe())
                while True:
                    try:
                        frame = await asyncio.wait_for(ws.recv(), self.idle_timeout)
                    except TimeoutError:
                        raise _Drop(f"no frame for {self.idle_timeout} s") from None
                    text = frame if isinstance(frame, str) else frame.decode()
                    for line in text.split("\n"):
                        if line:
                            item = self._handle(line)
                            if item is not None:
                                yield item
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            why = exc.rcvd.reason if exc.rcvd is not None else "connection lost"
            if self._closing:
                return
            if code == 4401:
                raise AuthenticationError(why, status=401) from None
            if code in (4403, 1008):
                raise PermissionDenied(why, status=403) from None
            raise _Drop(f"closed {code} {why}".strip()) from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500 and status != 429:
                raise ClientError(f"WebSocket handshake refused: HTTP {status}",
                                  status=status) from None  # fmt: skip
            raise _Drop(f"handshake: HTTP {status}") from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise _Drop(f"cannot connect: {exc!r}") from None
        finally:
            self._ws = None

    def _subscribe(self) -> str:
        msg: dict[str, Any] = {"op": "subscribe", "id": SUB_ID, "feed": self.feed,
                               "symbols": self.symbols}  # fmt: skip
        if self.types:
            msg["types"] = self.types
        since = self.resume_from()
        if since is not None:
            msg["from"] = max(since, 0)
        if self.transform:
            msg["transform"] = self.transform
        return msgspec.json.encode(msg).decode()

    # -- one message --------------------------------------------------------------------

    def _handle(self, line: str) -> Record | Event | None:
        obj = _decoder.decode(line)
        op = obj.get("op")
        if op is None:
            return self._record(line, obj)
        if op == "error":
            code, message = str(obj.get("code", "")), str(obj.get("message", ""))
            if code in RETRYABLE_CODES:
                raise _Drop(f"{code}: {message}")
            raise for_stream_code(code, message)
        if op == "subscribed":
            if self.since is None:
                self.since = now_ns()
            event: Event = Subscribed(
                obj["feed"], tuple(obj["types"]), tuple(obj["symbols"]),
                tuple(obj.get("entitled_symbols", ())), bool(obj.get("narrowed")),
                obj.get("from"),
            )  # fmt: skip
            return event if self.events else None
        if op == "live":
            return Live(int(obj.get("replayed", 0))) if self.events else None
        if op == "book_unknown":
            return BookUnknown(obj["symbol"], obj.get("reason", "")) if self.events else None
        return None  # heartbeat, pong, unsubscribed

    def _record(self, line: str, obj: dict[str, Any]) -> Record | None:
        obj.pop("id", None)
        try:
            record = from_wire(obj)
        except ValueError as exc:
            raise StreamError(f"undecodable record from the gateway: {exc}") from None
        if line in self._seen:
            self.duplicates += 1
            return None
        ts = record.ts_recv
        self._seen.add(line)
        self._order.append((ts, line))
        if self.max_ts_recv is None or ts > self.max_ts_recv:
            self.max_ts_recv = ts
        floor = self.max_ts_recv - self.overlap_ns
        while self._order and self._order[0][0] < floor:
            self._seen.discard(self._order.popleft()[1])
        return record
