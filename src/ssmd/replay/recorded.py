"""Recording mode: fixture recordings (cryptofeed format) and our raw journals as a `Feed`.

A connection gets the recorded `in` frames, byte for byte, in recorded order: the
leading status frames (Kraken `systemStatus` / v2 `status`) on connect, the rest after
the client's first subscribe (the recording's own acks are among them, so none is
invented). A recording without client frames (Binance: subscriptions in the URL)
starts on connect when the URL names streams, else on SUBSCRIBE, which is acked as
Binance does. Pings get the venue's pong. Several websocket recordings are merged by
receive time; only the first one's greeting is kept (they are per-connection).
REST bodies (`https://… -> ts: body` lines, journal `rest` lines, the `*.0` and
`*.http.*` siblings found next to a websocket recording) are served per path (and
`symbol=`), in file order, the last one repeating.
"""

from __future__ import annotations

import glob
import heapq
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
import orjson

from ssmd.replay.session import Reply, RestResponse
from ssmd.venues.recording import (
    Frame,
    guess_venue,
    iter_cryptofeed,
    iter_journal,
    rest_sibling_names,
)

__all__ = ["RecordedFeed", "load_frames", "read_lines"]

WS_PATHS = {"kraken-v2": "/v2", "binance": "/ws"}
_decode = msgspec.json.Decoder()


def read_lines(path: Path) -> list[str]:
    """Text lines of a recording; `.zst` journals may end in a torn frame (a crashed
    writer): everything readable before it is kept."""
    if path.suffix == ".zst":
        import zstandard

        raw = io.BytesIO()
        with path.open("rb") as fh:
            reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
            try:
                while chunk := reader.read(1 << 20):
                    raw.write(chunk)
            except zstandard.ZstdError:
                pass
        text = raw.getvalue().decode("utf-8", "replace")
    else:
        text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    return lines


def _is_journal(path: Path) -> bool:
    return path.name.endswith((".jsonl", ".jsonl.zst"))


def load_frames(path: Path) -> list[Frame]:
    """All frames of one file, journal or cryptofeed format (a torn last journal line is
    dropped)."""
    lines = read_lines(path)
    if not _is_journal(path):
        return list(iter_cryptofeed(lines))
    out: list[Frame] = []
    for i, line in enumerate(lines):
        try:
            out.extend(iter_journal([line]))
        except (msgspec.DecodeError, ValueError):
            if i < len(lines) - 2:
                raise ValueError(f"{path}: line {i + 1} is not a journal record") from None
    return out


def sniff_venue(frames: Iterable[Frame]) -> str:
    """The protocol of a recording from what the client sent (journals have no venue in
    their name)."""
    for f in frames:
        p = f.payload
        if f.direction == "out":
            if '"event":"subscribe"' in p.replace(" ", ""):
                return "kraken-v1"
            if '"method":"subscribe"' in p.replace(" ", ""):
                return "kraken-v2"
            if '"SUBSCRIBE"' in p:
                return "binance"
            if '"type":"subscribe"' in p.replace(" ", ""):
                return "coinbase-exchange"
        if f.direction == "open" and "binance" in f.endpoint:
            return "binance"
    return "generic"


def _is_greeting(payload: bytes) -> bool:
    head = payload[:200].replace(b" ", b"")
    return b'"event":"systemStatus"' in head or b'"channel":"status"' in head


class RecordedFeed:
    """Per server: the merged stream, the greeting, the REST table."""

    def __init__(self, paths: Sequence[str | Path], venue: str | None = None) -> None:
        files = [Path(p) for p in paths]
        if not files:
            raise ValueError("no recording given")
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"recording not found: {f}")
        files = self._with_siblings(files)
        streams: list[list[Frame]] = []
        rest: list[Frame] = []
        outs = 0
        for f in files:
            frames = load_frames(f)
            rest.extend(fr for fr in frames if fr.direction == "rest")
            ws = [fr for fr in frames if fr.direction in ("in", "out", "open")]
            if any(fr.direction == "in" for fr in ws):
                streams.append(ws)
                outs += sum(fr.direction == "out" for fr in ws)
        if not streams:
            raise ValueError(f"no websocket frames in {', '.join(map(str, files))}")
        self.venue = venue or self._guess(files, streams)
        self.ws_path = WS_PATHS.get(self.venue, "/")
        self.auto_ping = self.venue == "binance"
        self.has_client_frames = outs > 0
        self.greeting: list[bytes] = []
        merged: list[list[Frame]] = []
        for k, frames in enumerate(streams):
            ins = [fr for fr in frames if fr.direction == "in"]
            lead = 0
            while lead < len(ins) and _is_greeting(ins[lead].payload.encode()):
                lead += 1
            if k == 0:
                self.greeting = [fr.payload.encode() for fr in ins[:lead]]
            merged.append(ins[lead:])
        stream = (
            list(heapq.merge(*merged, key=lambda fr: fr.ts_recv)) if len(merged) > 1 else merged[0]
        )
        self.payloads = [fr.payload.encode() for fr in stream]
        t0 = stream[0].ts_recv if stream else 0
        self.dues = [max(0, fr.ts_recv - t0) for fr in stream]
        self.rest_table: dict[tuple[str, str], list[bytes]] = {}
        for fr in rest:
            self.rest_table.setdefault(_rest_key(fr.endpoint), []).append(fr.payload.encode())
        self._rest_pos: dict[tuple[str, str], int] = {}
        self.files = files

    @staticmethod
    def _with_siblings(files: list[Path]) -> list[Path]:
        out = list(files)
        for f in files:
            for pattern in rest_sibling_names(f.name):
                for hit in sorted(glob.glob(glob.escape(str(f.parent)) + "/" + pattern)):
                    p = Path(hit)
                    if p.is_file() and p not in out:
                        out.append(p)
        return out

    @staticmethod
    def _guess(files: list[Path], streams: list[list[Frame]]) -> str:
        for f in files:
            venue = guess_venue(f.name)
            if venue:
                return venue
        return sniff_venue(fr for s in streams for fr in s)

    def session(self, path: str, conn: int) -> RecordedSession:
        return RecordedSession(self, path)

    def rest(self, path: str) -> RestResponse:
        key = _rest_key(path)
        bodies = self.rest_table.get(key) or self.rest_table.get((key[0], ""))
        if not bodies:
            known = sorted({p for p, _ in self.rest_table})
            return RestResponse(404, orjson.dumps({"error": f"no recorded body for {path}",
                                                   "paths": known}))  # fmt: skip
        pos = self._rest_pos.get(key, 0)
        self._rest_pos[key] = pos + 1
        return RestResponse(200, bodies[min(pos, len(bodies) - 1)])


def _rest_key(url: str) -> tuple[str, str]:
    """(path, SYMBOL) of a REST URL; the symbol only where the venue keys bodies by it."""
    parts = urlsplit(url)
    symbol = parse_qs(parts.query).get("symbol", [""])[0].upper()
    return parts.path, symbol


class RecordedSession:
    """One connection's cursor over the recorded stream."""

    heartbeat: bytes | None = None

    def __init__(self, feed: RecordedFeed, path: str) -> None:
        self.feed = feed
        self.pos = 0
        url = urlsplit(path)
        self._auto = not feed.has_client_frames and (
            "streams=" in url.query or url.path.startswith("/ws/")
        )

    def greeting(self) -> list[bytes]:
        return list(self.feed.greeting)

    def autostart(self) -> bool:
        return self._auto

    def on_text(self, payload: bytes) -> Reply:
        try:
            msg = _decode.decode(payload)
        except msgspec.DecodeError:
            return Reply()
        if not isinstance(msg, dict):
            return Reply()
        if msg.get("event") == "ping":
            doc = {"event": "pong"}
            if "reqid" in msg:
                doc["reqid"] = msg["reqid"]
            return Reply([orjson.dumps(doc)])
        if msg.get("method") == "ping":
            doc = {"method": "pong"}
            if "req_id" in msg:
                doc["req_id"] = msg["req_id"]
            return Reply([orjson.dumps(doc)])
        if msg.get("method") in ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS"):
            ack = orjson.dumps({"result": None, "id": msg.get("id")})
            return Reply([] if self.feed.has_client_frames else [ack], msg["method"] == "SUBSCRIBE")
        kind = msg.get("event") or msg.get("method") or msg.get("type")
        return Reply(start=kind == "subscribe")

    def take(self, n: int) -> tuple[list[bytes], list[int]] | None:
        """The next recorded frames; None at the end of the recording."""
        a = self.pos
        if a >= len(self.feed.payloads):
            return None
        b = self.pos = min(a + n, len(self.feed.payloads))
        return self.feed.payloads[a:b], self.feed.dues[a:b]
