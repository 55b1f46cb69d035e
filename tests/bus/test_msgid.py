"""Nats-Msg-Id: one id per venue event, whoever captured it and whenever."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.bus.msgid import content_hash, msg_id, msg_id_for, seq_scope
from ssmd.model.records import Book, Gap, Quote, Record, Status, Trade

symbols = st.sampled_from(["BTC-USD", "ETH-USD", "KXBTC-25", "a:b", "x y"])
ints = st.integers(min_value=0, max_value=2**62)
fixed = st.integers(min_value=0, max_value=10**15)
ts = st.integers(min_value=1, max_value=2**62)


def trades() -> st.SearchStrategy[Trade]:
    trade_id = st.text(max_size=12)
    return st.builds(
        Trade, feed=st.just("f"), venue=st.just("v"), symbol=symbols, ts_event=ints,
        ts_recv=ts, seq=ints, price=fixed, size=fixed,
        side=st.sampled_from(["buy", "sell", "unknown"]), trade_id=trade_id,
    )  # fmt: skip


quotes = st.builds(
    Quote, feed=st.just("f"), venue=st.just("v"), symbol=symbols, ts_event=ints, ts_recv=ts,
    seq=ints, bid_px=fixed, bid_sz=fixed, ask_px=fixed, ask_sz=fixed,
)  # fmt: skip
levels = st.lists(st.tuples(fixed, fixed), max_size=4)
books = st.builds(
    Book, feed=st.just("f"), venue=st.just("v"), symbol=symbols, ts_event=ints, ts_recv=ts,
    seq=ints, snapshot=st.booleans(), bids=levels, asks=levels,
)  # fmt: skip
gaps = st.builds(
    Gap, feed=st.just("f"), venue=st.just("v"), symbol=symbols, ts_recv=ts, seq=ints,
    reason=st.sampled_from(["disconnect", "sequence"]), since_ns=ints, detail=st.text(max_size=8),
)  # fmt: skip
records = st.one_of(trades(), quotes, books, gaps)
scopes = st.sampled_from(["venue", "connection", "unknown"])


@settings(max_examples=300)
@given(records, ts, scopes)
def test_same_event_other_ts_recv_same_id(record: Record, other_recv: int, scope: str) -> None:
    """Connector A and B read the same frame at different times: one id."""
    b = msgspec.structs.replace(record, ts_recv=other_recv)
    assert msg_id(record, scope) == msg_id(b, scope)  # type: ignore[arg-type]


@settings(max_examples=300)
@given(records, ts, ints)
def test_connection_scoped_seq_does_not_enter_the_id(record: Record, recv: int, seq: int) -> None:
    """Kalshi/Coinbase Advanced number the connection's messages: A and B differ."""
    b = msgspec.structs.replace(record, ts_recv=recv, seq=seq)
    assert msg_id(record, "connection") == msg_id(b, "connection")


@settings(max_examples=200)
@given(st.lists(records, min_size=2, max_size=30), scopes)
def test_different_events_different_ids(batch: list[Record], scope: str) -> None:
    """Records that differ in what identifies the event get different ids."""

    def key(r: Record) -> object:
        if isinstance(r, Trade) and r.trade_id:
            return (type(r), r.symbol, "t", r.trade_id)
        if r.seq and scope == "venue" and not isinstance(r, Gap):
            return (type(r), r.symbol, "s", r.seq, isinstance(r, Book) and r.snapshot)
        seq = 0 if scope == "connection" else r.seq
        return msgspec.msgpack.encode(msgspec.structs.replace(r, ts_recv=0, seq=seq))

    by_key = {key(r): r for r in batch}
    ids = {msg_id(r, scope) for r in by_key.values()}  # type: ignore[arg-type]
    assert len(ids) == len(by_key)


@given(st.lists(st.text(min_size=1, max_size=10), min_size=2, max_size=20, unique=True))
def test_trade_ids_are_injective_even_with_separators(ids: list[str]) -> None:
    made = [
        Trade(feed="f", venue="v", symbol="S", ts_recv=1, price=1, size=1, trade_id=i) for i in ids
    ]
    out = [msg_id(t) for t in made]
    assert len(set(out)) == len(out)
    assert all("\r" not in m and "\n" not in m and " " not in m for m in out)


def test_exact_ids() -> None:
    t = Trade(feed="kraken", venue="kraken", symbol="BTC-USD", ts_recv=5, seq=9, price=1, size=2,
              trade_id="a:b c")  # fmt: skip
    assert msg_id(t, "venue") == "kraken:trade:BTC-USD:ta%3Ab%20c"
    q = Quote(feed="bn", venue="binance", symbol="BTC-USDT", ts_recv=1, seq=42, bid_px=1,
              bid_sz=1, ask_px=2, ask_sz=1)  # fmt: skip
    assert msg_id(q, "venue") == "bn:quote:BTC-USDT:s42"
    snap = Book(feed="bn", venue="binance", symbol="BTC-USDT", ts_recv=1, seq=42, snapshot=True,
                bids=[], asks=[])  # fmt: skip
    delta = msgspec.structs.replace(snap, snapshot=False)
    assert msg_id(snap, "venue") == "bn:book:BTC-USDT:S42"
    assert msg_id(delta, "venue") == "bn:book:BTC-USDT:s42"
    # unknown scope keeps seq in the hash; connection scope drops it
    assert msg_id(q) == f"bn:quote:BTC-USDT:h{content_hash(q)}"
    assert msg_id(q, "connection") == f"bn:quote:BTC-USDT:h{content_hash(q, drop_seq=True)}"
    assert msg_id(q) != msg_id(q, "connection")
    assert len(content_hash(q)) == 32


def test_gap_and_status_records_are_hashed_even_with_a_venue_seq() -> None:
    g = Gap(feed="bn", venue="binance", symbol="X", ts_recv=1, seq=7, reason="sequence")
    s = Status(feed="bn", venue="binance", symbol="X", ts_recv=1, seq=7, status="open")
    assert ":h" in msg_id(g, "venue") and ":h" in msg_id(s, "venue")


def test_scopes_per_protocol() -> None:
    assert seq_scope("binance") == "venue"
    assert seq_scope("kalshi") == "connection"
    assert seq_scope("coinbase-advanced") == "connection"
    assert seq_scope("sim") == "unknown"
    q = Quote(feed="k", venue="kalshi", symbol="M", ts_recv=1, seq=3, bid_px=1, bid_sz=1,
              ask_px=2, ask_sz=1)  # fmt: skip
    assert msg_id_for("kalshi")(q) == msg_id(q, "connection")


def test_record_message() -> None:
    from ssmd.bus.message import record_message
    from ssmd.model.codec import decode

    t = Trade(feed="kraken", venue="kraken", symbol="BTC/USD x", ts_recv=5, price=10**9, size=2,
              trade_id="77")  # fmt: skip
    subj, payload, mid = record_message("prod", t, "venue")
    assert subj == "md.prod.kraken.trade.BTC/USD_x"
    assert decode(payload) == t
    assert mid == "kraken:trade:BTC/USD%20x:t77"
