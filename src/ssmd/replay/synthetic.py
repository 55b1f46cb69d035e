"""Synthetic mode: a `Feed` of tapes (`synth.py`) behind the venue's subscribe protocol.

Kraken WS v2 (`kraken-v2`, and `sim`, which is Kraken v2 spoken by this server):
status on connect; `subscribe` per channel (book with depth, trade, ticker, instrument)
acked per symbol as Kraken does, with a book snapshot / ticker snapshot / instrument
snapshot; `ping` -> `pong`; `{"channel":"heartbeat"}` when idle for a second.
Binance spot: streams in the URL (`/stream?streams=a/b`, `/ws/a`) or SUBSCRIBE
(`{"result":null,"id":N}`); WebSocket pings from the server; REST `/api/v3/depth`,
`/api/v3/exchangeInfo`, `/api/v3/ping`, `/api/v3/time`.

Every connection plays the tape from frame 0 (same bytes on every connection, so
redundant connectors see identical data). `prebuild` frames are generated once at
start-up and shared, so a benchmark reads pre-encoded bytes. Snapshots (a subscribe, a
resync resubscribe, Binance REST depth) describe the book where the connection stands
on the tape, prebuilt or not (`rewind.py`), so the next update's checksum agrees.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import orjson

from ssmd.replay.rewind import Rewind
from ssmd.replay.session import Reply, RestResponse
from ssmd.replay.synth import AGG, BOOK, TAPES, TICKER, TRADE, BinanceTape, KrakenTape, Tape, iso_us

__all__ = ["SyntheticFeed"]

KRAKEN_DEPTHS = (10, 25, 100, 500, 1000)
CHUNK = 4096
"""Frames per prebuilt chunk when the tape is not paced."""
CHUNK_S = 0.05
"""Seconds of tape per chunk when paced: a snapshot asked for mid-stream goes out at the
next chunk boundary, so it waits at most this long (at 200 frames/s a 512-frame chunk
was 2.6 s, past the connector's 2 s resync watchdog)."""
_KRAKEN_CH = {"book": BOOK, "trade": TRADE, "ticker": TICKER}
_BINANCE_CH = {"depth": BOOK, "trade": TRADE, "bookTicker": TICKER, "aggTrade": AGG}
_decode = msgspec.json.Decoder()


class SyntheticFeed:
    """Per server: the tape parameters, the prebuilt prefix, REST."""

    def __init__(
        self,
        venue: str,
        symbols: Sequence[str],
        seed: int = 0,
        rate: float = 0.0,
        depth: int | None = None,
        start_ns: int | None = None,
        prebuild: int = 0,
    ) -> None:
        if venue not in TAPES:
            raise ValueError(f"synthetic mode speaks {', '.join(sorted(TAPES))}, not {venue!r}")
        if rate < 0:
            raise ValueError("rate must be >= 0 (0 = as fast as possible)")
        self.venue = venue
        self.tape_cls = TAPES[venue]
        self.binance = self.tape_cls is BinanceTape
        depth = depth or (20 if self.binance else 10)
        if not self.binance and depth not in KRAKEN_DEPTHS:
            raise ValueError(f"Kraken book depth must be one of {KRAKEN_DEPTHS}, not {depth}")
        self.ws_path = "/ws" if self.binance else "/v2"
        self.auto_ping = self.binance
        self.rate = rate
        self.step_ns = int(1e9 / rate) if rate > 0 else 1000
        self.chunk = max(1, min(CHUNK, int(rate * CHUNK_S))) if rate > 0 else CHUNK
        """Frames per chunk (prebuilt or generated)."""
        self.start_ns = start_ns if start_ns is not None else time.time_ns()
        self.params = dict(symbols=list(symbols), seed=seed, depth=depth,
                           start_ns=self.start_ns, step_ns=self.step_ns)  # fmt: skip
        self.template: Tape = self.tape_cls(**self.params)  # type: ignore[arg-type]
        self.prefix: list[tuple[list[bytes], list[int]]] = []
        self.after_prefix: Tape | None = None
        self.rewind: Rewind | None = None
        if prebuild > 0:
            self._prebuild(prebuild)
        self.latest: _TapeSession | None = None
        """The connection the REST depth snapshot describes (the newest to subscribe)."""

    def _prebuild(self, n: int) -> None:
        tape = self.template.copy()
        self.rewind = Rewind(tape)
        while tape.index < n:
            self.prefix.append(self.rewind.take(tape, min(self.chunk, n - tape.index)))
        self.after_prefix = tape

    def new_tape(self) -> Tape:
        return self.template.copy()

    def session(self, path: str, conn: int) -> Any:
        if self.binance:
            return BinanceSession(self, path, conn)
        return KrakenSession(self, conn)

    # -- REST ---------------------------------------------------------------------------

    def rest(self, path: str) -> RestResponse:
        url = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        tape = self.template
        if self.binance:
            assert isinstance(tape, BinanceTape)
            if url.path == "/api/v3/depth":
                sym = query.get("symbol", "").upper()
                if sym not in tape.names:
                    return _error(400, {"code": -1121, "msg": "Invalid symbol."})
                limit = int(query.get("limit", "100") or 100)
                i = tape.names.index(sym)
                if self.latest is not None:
                    tape = self.latest.tape_for(i)
                assert isinstance(tape, BinanceTape)
                return RestResponse(200, tape.depth_snapshot(i, limit))
            if url.path == "/api/v3/exchangeInfo":
                return RestResponse(200, tape.exchange_info())
            if url.path == "/api/v3/ping":
                return RestResponse(200, b"{}")
            if url.path == "/api/v3/time":
                return RestResponse(200, orjson.dumps({"serverTime": time.time_ns() // 10**6}))
        else:
            assert isinstance(tape, KrakenTape)
            if url.path.endswith("/AssetPairs"):
                return RestResponse(200, tape.asset_pairs())
        return _error(404, {"error": f"not served by the replay server: {url.path}"})


def _error(status: int, doc: dict[str, Any]) -> RestResponse:
    return RestResponse(status, orjson.dumps(doc))


class _TapeSession:
    """Shared stream logic: the prefix, then this connection's own tape; channel filter."""

    heartbeat: bytes | None = None

    def __init__(self, feed: SyntheticFeed) -> None:
        self.feed = feed
        self.tape: Tape = feed.new_tape() if not feed.prefix else feed.template
        self.wanted: set[int] = set()
        """Subscribed tags (symbol_index * 4 + channel)."""
        self._chunk = 0
        self._index = 0
        self.snapshots: dict[int, bytes] = {}
        """Book snapshots asked for mid-stream, by tag: sent in-band, at the next chunk
        boundary, where they agree with the tape (a reply sent at once could overtake
        updates of the chunk already in flight and contradict them). One per book; an
        unsubscribe before the boundary withdraws it."""

    def greeting(self) -> list[bytes]:
        return []

    def autostart(self) -> bool:
        return False

    def now_ns(self) -> int:
        """The tape's clock at this connection's position (acks, snapshots)."""
        return self.feed.start_ns + self._index * self.feed.step_ns

    def tape_for(self, i: int) -> Tape:
        """A tape whose symbol `i` stands at this connection's position: what a snapshot
        must describe. In the shared prebuilt prefix that is a rewound copy (read it at
        once: the next call reuses it); after it, this connection's own tape."""
        feed = self.feed
        if feed.rewind is not None and self._chunk < len(feed.prefix):
            return feed.rewind.at(self._chunk, i, self._index)
        return self.tape

    def take(self, n: int) -> tuple[list[bytes], list[int]] | None:
        """The next subscribed frames (the tape never ends; empty if nothing is wanted)."""
        if not self.wanted:
            return [], []
        for _ in range(64):
            frames, dues = self._take(n)
            if frames:
                break
        return frames, dues

    def _take(self, n: int) -> tuple[list[bytes], list[int]]:
        feed = self.feed
        if self._chunk < len(feed.prefix):
            frames, tags = feed.prefix[self._chunk]
            self._chunk += 1
            if self._chunk == len(feed.prefix):
                assert feed.after_prefix is not None
                self.tape = feed.after_prefix.copy()
        else:
            frames, tags = self.tape.take(min(n, feed.chunk))
        first = self._index
        self._index += len(frames)
        step = feed.step_ns if feed.rate > 0 else 0
        wanted = self.wanted
        if all(t in wanted for t in tags):
            kept, dues = frames, [(first + k) * step for k in range(len(frames))]
        else:
            keep = [k for k, t in enumerate(tags) if t in wanted]
            kept, dues = [frames[k] for k in keep], [(first + k) * step for k in keep]
        if self.snapshots:  # they describe the tape before this chunk: they go first
            kept = [*self.snapshots.values(), *kept]
            dues = [first * step] * len(self.snapshots) + dues
            self.snapshots = {}
        return kept, dues


class KrakenSession(_TapeSession):
    """Kraken WS v2 protocol on a synthetic tape."""

    heartbeat = b'{"channel":"heartbeat"}'

    def __init__(self, feed: SyntheticFeed, conn: int) -> None:
        super().__init__(feed)
        self.conn = conn
        self.names = feed.template.names
        self.index_of = {name: i for i, name in enumerate(self.names)}

    def greeting(self) -> list[bytes]:
        doc = {"channel": "status", "type": "update",
               "data": [{"version": "2.0.10", "system": "online", "api_version": "v2",
                         "connection_id": 4_000_000_000 + self.feed.params["seed"] * 1000
                         + self.conn}]}  # fmt: skip
        return [orjson.dumps(doc)]

    def _times(self, msg: dict[str, Any]) -> dict[str, Any]:
        now = iso_us(self.now_ns())
        out = {"success": True, "time_in": now, "time_out": now}
        if "req_id" in msg:
            out["req_id"] = msg["req_id"]
        return out

    def on_text(self, payload: bytes) -> Reply:
        try:
            msg = _decode.decode(payload)
        except msgspec.DecodeError:
            return Reply([orjson.dumps({"error": "Malformed request", "success": False})])
        if not isinstance(msg, dict):
            return Reply([orjson.dumps({"error": "Malformed request", "success": False})])
        method = msg.get("method")
        if method == "ping":
            doc = {"method": "pong", **self._times(msg)}
            doc.pop("success")
            return Reply([orjson.dumps(doc)])
        if method in ("subscribe", "unsubscribe"):
            return self._subscribe(method, msg)
        return Reply([orjson.dumps({"error": "Method not found", "method": method,
                                    **self._times(msg), "success": False})])  # fmt: skip

    def _subscribe(self, method: str, msg: dict[str, Any]) -> Reply:
        params = msg.get("params") or {}
        channel = params.get("channel")
        symbols = params.get("symbol") or []
        reply = Reply()
        tape = self.tape
        assert isinstance(tape, KrakenTape)
        if channel not in (*_KRAKEN_CH, "instrument", "heartbeat", "status"):
            reply.frames.append(orjson.dumps({"error": f"Channel {channel} not supported",
                                              "method": method, **self._times(msg),
                                              "success": False}))  # fmt: skip
            return reply
        if channel in ("instrument", "heartbeat", "status"):
            result = {"channel": channel, "snapshot": True}
            reply.frames.append(orjson.dumps({"method": method, "result": result,
                                              **self._times(msg)}))  # fmt: skip
            if channel == "instrument" and method == "subscribe":
                reply.frames.append(tape.instrument_snapshot())
            return reply
        for sym in symbols:
            i = self.index_of.get(sym)
            if i is None:
                err = {"error": f"Currency pair not supported {sym}", "method": method}
                err.update(symbol=sym, **self._times(msg))
                err["success"] = False
                reply.frames.append(orjson.dumps(err))
                continue
            tag = i * 4 + _KRAKEN_CH[channel]
            result: dict[str, Any] = {"channel": channel, "symbol": sym}
            if channel == "book":
                result["depth"] = self.feed.params["depth"]
            if method == "subscribe":
                result["snapshot"] = channel != "trade"
            reply.frames.append(orjson.dumps({"method": method, "result": result,
                                              **self._times(msg)}))  # fmt: skip
            if method == "unsubscribe":
                self.wanted.discard(tag)
                self.snapshots.pop(tag, None)
                continue
            self.wanted.add(tag)
            reply.start = True
            if channel == "trade":
                continue
            here = self.tape_for(i)
            assert isinstance(here, KrakenTape)
            if channel == "ticker":
                reply.frames.append(here.ticker(i, "snapshot"))
            elif self._index:
                self.snapshots[tag] = here.book_snapshot(i)  # in-band: see _TapeSession
            else:
                reply.frames.append(here.book_snapshot(i))
        return reply


class BinanceSession(_TapeSession):
    """Binance spot market streams on a synthetic tape (raw /ws or combined /stream)."""

    def __init__(self, feed: SyntheticFeed, path: str, conn: int) -> None:
        super().__init__(feed)
        url = urlsplit(path)
        self.combined = url.path.startswith("/stream")
        self.index_of = {n.lower(): i for i, n in enumerate(feed.template.names)}
        """Lower-case stream symbol -> symbol index (per frame on /stream: no list scan)."""
        self.stream_names: dict[int, bytes] = {}
        initial: list[str] = []
        if self.combined:
            initial = parse_qs(url.query).get("streams", [""])[0].split("/")
        elif url.path.startswith("/ws/"):
            initial = url.path[4:].split("/")
        self.unknown = [s for s in initial if s and not self._add(s)]
        self._auto = bool(initial and initial != [""])
        if self._auto:
            feed.latest = self

    def autostart(self) -> bool:
        return self._auto

    def _parse(self, stream: str) -> int | None:
        sym, _, kind = stream.partition("@")
        kind = kind.split("@")[0]
        i = self.index_of.get(sym)
        if i is None or kind not in _BINANCE_CH:
            return None
        return i * 4 + _BINANCE_CH[kind]

    def _add(self, stream: str) -> bool:
        tag = self._parse(stream)
        if tag is None:
            return False
        self.wanted.add(tag)
        self.stream_names[tag] = stream.encode()
        return True

    def on_text(self, payload: bytes) -> Reply:
        try:
            msg = _decode.decode(payload)
            method, params, req_id = msg["method"], msg.get("params", []), msg.get("id")
        except (msgspec.DecodeError, KeyError, TypeError):
            return Reply([orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})])
        if method == "SUBSCRIBE":
            bad = [s for s in params if not self._add(s)]
            if bad:
                err = {"code": 2, "msg": f"Invalid request: unknown stream {bad[0]}"}
                return Reply([orjson.dumps({"error": err, "id": req_id})])
            self.feed.latest = self
            return Reply([orjson.dumps({"result": None, "id": req_id})], start=True)
        if method == "UNSUBSCRIBE":
            for s in params:
                tag = self._parse(s)
                if tag is not None:
                    self.wanted.discard(tag)
            return Reply([orjson.dumps({"result": None, "id": req_id})])
        if method == "LIST_SUBSCRIPTIONS":
            names = sorted(n.decode() for t, n in self.stream_names.items() if t in self.wanted)
            return Reply([orjson.dumps({"result": names, "id": req_id})])
        return Reply([orjson.dumps({"error": {"code": 1, "msg": "Unknown method"}, "id": req_id})])

    def take(self, n: int) -> tuple[list[bytes], list[int]] | None:
        got = super().take(n)
        if got is None or not self.combined or not got[0]:
            return got
        frames, dues = got
        # re-derive each kept frame's stream name from its symbol and event type
        out = []
        for f in frames:
            out.append(b'{"stream":"' + self._stream_of(f) + b'","data":' + f + b"}")
        return out, dues

    def _stream_of(self, frame: bytes) -> bytes:
        if frame.startswith(b'{"u"'):
            kind = TICKER
            sym = frame[frame.index(b'"s":"') + 5 :].split(b'"', 1)[0]
        else:
            sym = frame[frame.index(b'"s":"') + 5 :].split(b'"', 1)[0]
            kind = {b"d": BOOK, b"t": TRADE, b"a": AGG}[frame[6:7]]
        tag = self.index_of[sym.decode().lower()] * 4 + kind
        return self.stream_names[tag]
