"""Every parser survives garbage: no exception escapes, each bad frame is a counted
`gap(reason=parse)`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.cli.venue import load_frames
from ssmd.model.records import Gap
from ssmd.venues._normalizer import NormalizerBase
from ssmd.venues.binance import BinanceNormalizer
from ssmd.venues.kraken_v1 import KrakenV1Normalizer

PARSERS: dict[str, Callable[[], NormalizerBase]] = {
    "kraken-v1": KrakenV1Normalizer,
    "binance": BinanceNormalizer,
}
try:
    from ssmd.venues.kraken_v2 import KrakenV2Normalizer

    PARSERS["kraken-v2"] = KrakenV2Normalizer
except ImportError:  # pragma: no cover - v2 lands separately
    pass

BAD: list[bytes | str] = [
    b"",
    b"\xff\xfe\x00garbage",
    '[1664,{"a":[["0.1","1","1"]]},"book-10","WAVES/EUR"]'.encode("utf-16"),
    b"[",
    b"{",
    b'{"stream": "x", "data": 5}',
    b'[1360,{"as":[["abc","1.0","1.0"]],"bs":[]},"book-10","ADA/XBT"]',
    b'[1360,[["1.0","x","1.0","b","l",""]],"trade","ADA/XBT"]',
    b'{"e":"depthUpdate","s":"NKNUSDT","U":"x","u":2,"b":[],"a":[]}',
    b'{"e":"trade","s":"NKNUSDT","p":"1e999999","q":"1","T":1,"m":true,"t":1}',
    b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":"x"}]}]}',
    b"[" * 100_000,
    b'{"a":"' + b"9" * 2_000_000 + b'"}' + b"}",
    "\ud800".encode("utf-8", "surrogatepass"),
]


@pytest.mark.parametrize("venue", sorted(PARSERS))
def test_bad_frames_become_counted_parse_gaps(venue: str) -> None:
    n = PARSERS[venue]()
    for i, frame in enumerate(BAD):
        before = n.stats.parse_errors
        out = n.on_frame(frame, i)
        assert len(out) == 1 and isinstance(out[0], Gap), (venue, frame[:40])
        assert out[0].reason == "parse" and len(out[0].detail) <= 200
        assert n.stats.parse_errors == before + 1
    assert n.stats.frames == len(BAD)
    assert n.stats.records == {"gap": len(BAD)}


@pytest.mark.parametrize(
    ("venue", "recording"), [("kraken-v1", "KRAKEN.ws.50.0"), ("binance", "BINANCE.ws.1.0")]
)
def test_truncated_real_frames(fixtures_dir: Path, venue: str, recording: str) -> None:
    """Every real frame cut short is a parse gap (never an exception, never a record)."""
    frames = [
        f for f in load_frames(fixtures_dir / "recordings" / recording) if f.direction == "in"
    ]
    n = PARSERS[venue]()
    cut = 0
    for k, frame in enumerate(frames[:400]):
        n.on_frame(frame.payload, frame.ts_recv)  # keep state realistic
        short = frame.payload[: max(1, (len(frame.payload) * (k % 7 + 1)) // 9)]
        out = n.on_frame(short, frame.ts_recv)
        assert out and isinstance(out[-1], Gap) and out[-1].reason == "parse", short[:60]
        cut += 1
    assert n.stats.parse_errors == cut


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_random_frames_never_raise(frame: bytes | str) -> None:
    for make in PARSERS.values():
        n = make()
        out = n.on_frame(frame, 1)
        assert isinstance(out, list)
        assert n.stats.parse_errors == sum(isinstance(r, Gap) and r.reason == "parse" for r in out)
