"""The secmaster's iids reach every record: given before the frames (what the connector
journals at each connection open) or learned mid-stream (a hot-reloaded instrument)."""

from __future__ import annotations

from ssmd.replay.synth import KrakenTape
from ssmd.venues import sim

SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD"]
IIDS = {"BTC-USD": 7, "ETH-USD": 11}  # SOL-USD not in the secmaster: iid 0


def _frames() -> tuple[KrakenTape, list[bytes]]:
    tape = KrakenTape(SYMBOLS, seed=5, depth=10, start_ns=0)
    return tape, [tape.book_snapshot(i) for i in range(3)] + tape.take(600)[0]


def test_records_carry_the_iids_set_before_the_frames() -> None:
    tape, frames = _frames()
    norm = sim.normalizer(feed="sim")
    norm.on_rest(sim.instruments_url(), tape.asset_pairs(), 0)  # names learned from REST
    norm.set_iids(IIDS)
    out = [r for n, f in enumerate(frames) for r in norm.on_frame(f, n)]
    by_symbol = {(r.symbol, r.iid) for r in out}
    assert by_symbol == {("BTC-USD", 7), ("ETH-USD", 11), ("SOL-USD", 0)}
    assert {r.__struct_config__.tag for r in out} >= {"book", "trade"}


def test_an_iid_learned_mid_stream_applies_from_the_next_record() -> None:
    _, frames = _frames()
    norm = sim.normalizer(feed="sim")
    early = [r for n, f in enumerate(frames[:300]) for r in norm.on_frame(f, n)]
    norm.set_iids({"SOL-USD": 3})
    late = [r for n, f in enumerate(frames[300:]) for r in norm.on_frame(f, n)]
    assert {r.iid for r in early if r.symbol == "SOL-USD"} == {0}
    assert {r.iid for r in late if r.symbol == "SOL-USD"} == {3}  # its book too
    assert {r.iid for r in late if r.symbol != "SOL-USD"} == {0}
