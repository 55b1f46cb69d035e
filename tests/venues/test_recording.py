"""Reading recordings: the fixtures' cryptofeed format and our raw journal."""

from __future__ import annotations

from pathlib import Path

import msgspec
import zstandard

from ssmd.cli.venue import load_frames, load_recording, rest_siblings
from ssmd.venues.recording import (
    guess_venue,
    iter_journal,
    parse_cryptofeed_line,
    rest_sibling_names,
    seconds_to_ns,
)


def test_line_grammar() -> None:
    assert seconds_to_ns("1633998512.0633569") == 1633998512063356900
    assert seconds_to_ns("1618678132.83097") == 1618678132830970000
    f = parse_cryptofeed_line('1618678133.2949052: {"event":"heartbeat"}\n')
    assert f == (1618678133294905200, "in", '{"event":"heartbeat"}', "")
    f = parse_cryptofeed_line('wss://ws.kraken.com <- 1618678132.8253062: {"a": "b: c"}')
    assert f is not None and f.direction == "out" and f.payload == '{"a": "b: c"}'
    f = parse_cryptofeed_line("wss://ws.kraken.com <-> 1618678132.3858151")
    assert f is not None and f.direction == "open" and f.endpoint == "wss://ws.kraken.com"
    f = parse_cryptofeed_line('https://x/depth?symbol=A -> 1.5: {"k": 1} header: {"h": 2}')
    assert f == (1_500_000_000, "rest", '{"k": 1}', "https://x/depth?symbol=A")
    assert parse_cryptofeed_line("") is None
    assert parse_cryptofeed_line('configuration: {"a": 1}') is None


def test_names() -> None:
    assert rest_sibling_names("BINANCE.ws.1.0") == ["BINANCE.0", "BINANCE.http.*.0"]
    assert rest_sibling_names("KRAKEN.0") == []
    assert guess_venue("KRAKEN.ws.50.0") == "kraken-v1"
    assert guess_venue("BINANCE.ws.1.0") == "binance"
    assert guess_venue("COINBASE.ws.28.0") == "coinbase-exchange"
    assert guess_venue("mystery.txt") is None


def test_fixture_counts(fixtures_dir: Path) -> None:
    rec = fixtures_dir / "recordings"
    frames = load_frames(rec / "KRAKEN.ws.50.0")
    assert sum(f.direction == "in" for f in frames) == 4321
    assert [f.direction for f in frames[:2]] == ["open", "out"]
    assert [p.name for p in rest_siblings(rec / "BINANCE.ws.1.0")] == [
        "BINANCE.0", "BINANCE.http.0.0",
    ]  # fmt: skip
    merged, _ = load_recording(rec / "BINANCE.ws.1.0")
    rest = [f for f in merged if f.direction == "rest"]
    assert len(rest) == 5 and "exchangeInfo" in rest[0].endpoint  # instrument list first
    times = [f.ts_recv for f in merged[1:]]
    assert times == sorted(times)  # snapshots interleaved by receive time
    assert merged.index(rest[1]) > 1  # the first snapshot came after some diffs


def test_journal_round_trip(tmp_path: Path, fixtures_dir: Path) -> None:
    """Our own journal format replays identically to the cryptofeed file it came from."""
    src = fixtures_dir / "recordings" / "KRAKEN.ws.49.0"
    frames = [f for f in load_frames(src) if f.direction == "in"]
    lines = [
        msgspec.json.encode({"t": f.ts_recv, "m": i, "c": 0, "d": "in", "p": f.payload}) + b"\n"
        for i, f in enumerate(frames)
    ]
    path = tmp_path / "0-0-1618678132.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b"".join(lines)))
    back = load_frames(path)
    assert back == frames
    # a payload stored as a JSON value (not a string) is re-encoded as the frame text
    (obj,) = iter_journal(['{"t": 5, "m": 1, "c": 0, "d": "in", "p": {"event": "heartbeat"}}'])
    assert obj.payload == '{"event": "heartbeat"}' and obj.ts_recv == 5
