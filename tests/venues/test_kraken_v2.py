"""Kraken WS v2: the real v1 book recording rewritten as v2 frames must verify all 4,269
checksums; golden message files (synthetic) checked for shape."""

from __future__ import annotations

from pathlib import Path

import msgspec

from ssmd.book.checksum import decimals_of
from ssmd.cli.venue import load_frames
from ssmd.model.records import Gap, Quote, Trade
from ssmd.venues import kraken_v2
from ssmd.venues.kraken_v2 import KrakenV2Normalizer


def _levels(rows: list[list[str]]) -> str:
    return "[" + ",".join(f'{{"price":{r[0]},"qty":{r[1]}}}' for r in rows) + "]"


def _as_v2(msg: list) -> str:
    pair, body = msg[-1], msg[1]
    if "as" in body or "bs" in body:
        kind, bids, asks, c = "snapshot", body.get("bs", []), body.get("as", []), None
    else:
        kind, bids, asks, c = "update", [], [], None
        for b in msg[1:-2]:
            asks += b.get("a", [])
            bids += b.get("b", [])
            c = b.get("c", c)
    check = f',"checksum":{c}' if c is not None else ""
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{pair}",'
        f'"bids":{_levels(bids)},"asks":{_levels(asks)}{check}}}]}}'
    )


def test_v1_recording_as_v2_verifies(fixtures_dir: Path) -> None:
    n = KrakenV2Normalizer(depth=1000)
    sent = 0
    for frame in load_frames(fixtures_dir / "recordings" / "KRAKEN.ws.50.0"):
        if frame.direction != "in" or not frame.payload.startswith("["):
            continue
        msg = msgspec.json.decode(frame.payload)
        if "as" in msg[1]:  # v2 takes precision from the instrument channel
            first = msg[1]["as"][0]
            n.precision[msg[-1]] = (decimals_of(first[0]), decimals_of(first[1]))
        out = n.on_frame(_as_v2(msg), frame.ts_recv)
        assert not any(isinstance(r, Gap) for r in out), out
        sent += 1
    assert sent == 4279
    assert n.stats.checksums_verified == 4269 and n.stats.checksums_failed == 0


def test_golden_messages(fixtures_dir: Path) -> None:
    d = fixtures_dir / "messages" / "kraken"
    n = KrakenV2Normalizer()
    trades = n.on_frame((d / "ws_trade_update.json").read_bytes(), 1)
    assert [type(t) for t in trades] == [Trade, Trade]
    assert trades[0].side == "buy" and trades[0].trade_id == "10218208"  # shape: ids carried
    (quote,) = n.on_frame((d / "ws_ticker_snapshot.json").read_bytes(), 1)
    assert isinstance(quote, Quote) and quote.symbol == "BTC-USD"
    assert quote.bid_sz == 2_500_000_000  # JSON number 2.5, decoded exactly
    # the snapshot's checksum is synthetic (fixtures README): it must be *caught*
    (gap,) = n.on_frame((d / "ws_book_snapshot.json").read_bytes(), 1)
    assert isinstance(gap, Gap) and gap.reason == "checksum"
    assert n.on_frame((d / "ws_book_update.json").read_bytes(), 2) == []  # withdrawn book
    assert n.take_resyncs()[0].action == "resubscribe"
    assert n.on_frame((d / "ws_pong.json").read_bytes(), 3) == []
    assert n.on_frame((d / "ws_subscribe_response.json").read_bytes(), 3) == []


def test_builders() -> None:
    (sub,) = kraken_v2.subscribe(["book"], ["BTC/USD", "ETH/USD"], depth=25, req_id=9)
    assert msgspec.json.decode(sub) == {
        "method": "subscribe",
        "params": {"channel": "book", "depth": 25, "symbol": ["BTC/USD", "ETH/USD"]},
        "req_id": 9,
    }
    frames = [
        msgspec.json.decode(f)
        for f in kraken_v2.subscribe(["trade", "ticker"], [f"S{i}/USD" for i in range(60)])
    ]
    assert [(f["params"]["channel"], len(f["params"]["symbol"]), f["req_id"]) for f in frames] == [
        ("trade", 50, 1), ("trade", 10, 2), ("ticker", 50, 3), ("ticker", 10, 4),
    ]  # fmt: skip
    assert msgspec.json.decode(kraken_v2.heartbeat()) == {"method": "ping"}
