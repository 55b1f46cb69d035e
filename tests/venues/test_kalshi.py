"""Kalshi: YES-perspective books, seq gaps, lifecycle, REST. The message fixtures are
synthetic (shape and field mapping, not market truth); values asserted are the mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.model.fixed import from_fixed
from ssmd.model.records import Book, Gap, InstrumentRecord, Quote, Status, Trade
from ssmd.venues import kalshi
from ssmd.venues.base import SymbolInfo

E9 = 10**9
C = E9 // 100  # one cent
M = "KXBTC-25MAR15-B100000"


def msg(fixtures_dir: Path, name: str) -> bytes:
    return (fixtures_dir / "messages" / "kalshi" / name).read_bytes()


def frame(kind: str, seq: int | None, sid: int = 1, **body: object) -> str:
    out: dict[str, object] = {"type": kind, "sid": sid, "msg": {"market_ticker": M, **body}}
    if seq is not None:
        out["seq"] = seq
    return json.dumps(out)


def test_snapshot_maps_no_bids_to_yes_asks(fixtures_dir: Path) -> None:
    norm = kalshi.normalizer()
    (book,) = norm.on_frame(msg(fixtures_dir, "ws_orderbook_snapshot.json"), 7)
    # yes_dollars_fp [["0.3500","200.00"],["0.4200","13.00"]]
    # no_dollars_fp  [["0.5400","400.00"],["0.5600","17.00"]] -> YES asks 0.46 / 0.44
    assert isinstance(book, Book) and book.snapshot and (book.symbol, book.seq) == (M, 1)
    assert book.bids == [(42 * C, 13 * E9), (35 * C, 200 * E9)]
    assert book.asks == [(44 * C, 17 * E9), (46 * C, 400 * E9)]
    assert [from_fixed(p) for p, _ in book.asks] == ["0.44", "0.46"]
    # delta: yes +50.00 at 0.42 -> 63 contracts (absolute size published)
    (delta,) = norm.on_frame(msg(fixtures_dir, "ws_orderbook_delta.json"), 8)
    assert (delta.snapshot, delta.seq, delta.bids, delta.asks) == (
        False,
        2,
        [(42 * C, 63 * E9)],
        [],
    )
    assert delta.ts_event == 1740853613_361842000  # "2025-03-01T18:26:53.361842Z"
    assert norm.stats.sequence_gaps == 0


def test_no_delta_moves_the_yes_ask(fixtures_dir: Path) -> None:
    norm = kalshi.normalizer()
    norm.on_frame(msg(fixtures_dir, "ws_orderbook_snapshot.json"), 1)
    (d,) = norm.on_frame(
        frame("orderbook_delta", 2, price_dollars="0.5600", delta_fp="-17.00", side="no"), 2
    )
    assert (d.bids, d.asks) == ([], [(44 * C, 0)])  # NO bid 0.56 gone = YES ask 0.44 gone
    assert norm.books[M].best_ask() == (46 * C, 400 * E9)


def test_legacy_cent_messages() -> None:
    norm = kalshi.normalizer()
    (book,) = norm.on_frame(
        frame("orderbook_snapshot", 1, yes=[[35, 200], [42, 13]], no=[[54, 400]]), 1
    )
    assert book.bids == [(42 * C, 13 * E9), (35 * C, 200 * E9)] and book.asks == [
        (46 * C, 400 * E9)
    ]
    (d,) = norm.on_frame(frame("orderbook_delta", 2, price=54, delta=-400, side="no"), 2)
    assert d.asks == [(46 * C, 0)]
    (t,) = norm.on_frame(
        frame(
            "trade",
            None,
            2,
            trade_id="t1",
            yes_price=36,
            no_price=64,
            count=3,
            taker_side="yes",
            ts=1669149841,
        ),
        3,
    )
    assert (t.price, t.size, t.side, t.ts_event) == (36 * C, 3 * E9, "buy", 1669149841 * E9)


def test_trade_fixture(fixtures_dir: Path) -> None:
    (t,) = kalshi.normalizer().on_frame(msg(fixtures_dir, "ws_trade.json"), 1)
    # yes_price_dollars "0.3600", count_fp "136.00", taker_side "no" (bought NO = sold YES)
    assert isinstance(t, Trade)
    assert (t.symbol, t.price, t.size, t.side) == (M, 36 * C, 136 * E9, "sell")
    assert (t.trade_id, t.ts_event) == ("d91bc706-ee49-470d-82d8-11418bda6fed", 1741052641 * E9)


def test_skipped_seq_is_a_gap_and_a_resync(fixtures_dir: Path) -> None:
    norm = kalshi.normalizer({M: SymbolInfo(M, iid=9)})
    norm.on_frame(msg(fixtures_dir, "ws_orderbook_snapshot.json"), 100)  # seq 1
    bad = frame("orderbook_delta", 3, price_dollars="0.4200", delta_fp="1.00", side="yes")
    (gap,) = norm.on_frame(bad, 200)  # seq 2 never arrived
    assert isinstance(gap, Gap) and gap.reason == "sequence" and (gap.symbol, gap.iid) == (M, 9)
    assert (gap.seq, gap.since_ns, gap.until_ns) == (3, 100, 200)
    assert "skipped 1" in gap.detail
    (resync,) = norm.take_resyncs()
    assert (resync.action, resync.venue_symbols) == ("resubscribe", (M,))
    # Kalshi unsubscribes by sid, which only the normalizer knows: the frames ride along
    sid = json.loads(bad)["sid"]
    assert [json.loads(f) for f in resync.frames] == [
        {"id": kalshi.RESYNC_CMD_IDS, "cmd": "unsubscribe", "params": {"sids": [sid]}},
        {
            "id": kalshi.RESYNC_CMD_IDS + 1,
            "cmd": "subscribe",
            "params": {"channels": ["orderbook_delta"], "market_tickers": [M]},
        },
    ]
    assert M not in norm.books and norm.stats.sequence_gaps == 1
    # deltas keep being dropped (no second gap) until a new snapshot arrives
    assert (
        norm.on_frame(
            frame("orderbook_delta", 4, price_dollars="0.42", delta_fp="1", side="yes"), 300
        )
        == []
    )
    (snap,) = norm.on_frame(
        frame("orderbook_snapshot", 1, sid=2, yes_dollars_fp=[["0.40", "5"]]), 400
    )
    assert snap.snapshot and snap.bids == [(40 * C, 5 * E9)] and snap.asks == []
    assert norm.books[M].best_bid() == (40 * C, 5 * E9)


def test_delta_below_zero_is_caught() -> None:
    norm = kalshi.normalizer()
    norm.on_frame(frame("orderbook_snapshot", 1, yes_dollars_fp=[["0.40", "5"]]), 1)
    (gap,) = norm.on_frame(
        frame("orderbook_delta", 2, price_dollars="0.40", delta_fp="-6", side="yes"), 2
    )
    assert gap.reason == "sequence" and "leaves" in gap.detail
    assert norm.take_resyncs()[0].venue_symbols == (M,)


def test_crossed_book_is_a_gap() -> None:
    norm = kalshi.normalizer()
    # YES bid 0.60 and NO bid 0.45 (= YES ask 0.55): 0.60 + 0.45 > $1, impossible on Kalshi
    out = norm.on_frame(
        frame(
            "orderbook_snapshot", 1, yes_dollars_fp=[["0.60", "1"]], no_dollars_fp=[["0.45", "1"]]
        ),
        1,
    )
    assert [type(r) for r in out] == [Book, Gap] and out[1].reason == "crossed"
    assert norm.stats.crossed == 1 and M not in norm.books


def test_ticker_quotes_yes_side() -> None:
    norm = kalshi.normalizer()
    (q,) = norm.on_frame(
        frame("ticker", None, 3, price=48, yes_bid=47, yes_ask=49, ts=1669149841), 1
    )
    assert isinstance(q, Quote) and (q.bid_px, q.ask_px, q.bid_sz, q.ask_sz) == (
        47 * C,
        49 * C,
        0,
        0,
    )
    (q,) = norm.on_frame(
        frame(
            "ticker",
            None,
            3,
            yes_bid_dollars="0.4750",
            yes_ask_dollars="0.4900",
            yes_bid_size_fp="10.00",
            yes_ask_size_fp="2.50",
            ts_ms=1669149841123,
        ),
        2,
    )
    assert (q.bid_px, q.bid_sz, q.ask_sz, q.ts_event) == (
        47_500_000 * 10,
        10 * E9,
        2_500_000_000,
        1669149841_123_000_000,
    )
    # ticker_v2 sends only what changed: the other side is remembered
    (q,) = norm.on_frame(frame("ticker_v2", None, 3, yes_ask_dollars="0.5100"), 3)
    assert (q.bid_px, q.ask_px) == (475 * E9 // 1000, 51 * C)


def test_lifecycle_states_and_settlement() -> None:
    norm = kalshi.normalizer()
    (s,) = norm.on_frame(
        frame(
            "market_lifecycle_v2",
            None,
            4,
            event_type="determined",
            result="yes",
            determination_ts=1742083300,
        ),
        1,
    )
    assert isinstance(s, Status) and (s.status, s.reason, s.result) == (
        "determined",
        "determined",
        "yes",
    )
    assert s.ts_event == 1742083300 * E9
    (s,) = norm.on_frame(
        frame(
            "market_lifecycle_v2", None, 4, event_type="settled", result="no", settled_ts=1742090000
        ),
        2,
    )
    assert (s.status, s.result) == ("finalized", "no")
    (s,) = norm.on_frame(
        frame("market_lifecycle_v2", None, 4, event_type="deactivated", is_deactivated=True), 3
    )
    assert s.status == "inactive"
    (i,) = norm.on_frame(
        frame("market_lifecycle_v2", None, 4, event_type="close_date_updated", close_ts=1742169600),
        4,
    )
    assert isinstance(i, InstrumentRecord) and (i.kind, i.expiry_ns) == ("binary", 1742169600 * E9)


def test_rest_markets_and_events(fixtures_dir: Path) -> None:
    (m,) = kalshi.parse_markets(msg(fixtures_dir, "http_markets.json"))
    assert (m.venue_symbol, m.symbol, m.kind, m.quote, m.status) == (
        M,
        M,
        "binary",
        "USD",
        "active",
    )
    assert m.expiry_ns == 1742083199 * E9  # close_time 2025-03-15T23:59:59Z
    assert (m.tick_size, m.lot_size, m.settlement) == (C, E9, "")
    assert m.extra["event_ticker"] == "KXBTC-25MAR15"
    settled = {
        "ticker": "A-1",
        "status": "settled",
        "result": "no",
        "close_time": "2025-01-01T00:00:00Z",
        "price_level_structure": "deci_cent",
        "fractional_trading_enabled": True,
    }
    events = {
        "events": [{"event_ticker": "A", "series_ticker": "SA", "title": "T", "markets": [settled]}]
    }
    (e,) = kalshi.parse_events(json.dumps(events))
    assert (e.symbol, e.status, e.settlement, e.tick_size, e.lot_size) == (
        "A-1",
        "finalized",
        "no",
        C // 10,
        C,
    )
    assert e.extra["event_series_ticker"] == "SA"


def test_builders() -> None:
    tickers = [f"T-{i}" for i in range(250)]
    chans = ["orderbook_delta", "trade", "ticker", "market_lifecycle"]
    frames = [json.loads(f) for f in kalshi.subscribe(chans, tickers)]
    assert [f["id"] for f in frames] == [1, 2, 3, 4]
    assert [len(f["params"].get("market_tickers", [])) for f in frames] == [100, 100, 50, 0]
    assert frames[0]["params"]["channels"] == ["orderbook_delta", "trade", "ticker"]
    assert frames[3] == {
        "id": 4,
        "cmd": "subscribe",
        "params": {"channels": ["market_lifecycle_v2"]},
    }
    unsub, sub = kalshi.resubscribe(7, [M], first_id=10)
    assert json.loads(unsub) == {"id": 10, "cmd": "unsubscribe", "params": {"sids": [7]}}
    assert json.loads(sub)["params"] == {"channels": ["orderbook_delta"], "market_tickers": [M]}
    assert kalshi.heartbeat() is None
    (unsub,) = kalshi.unsubscribe(["orderbook_delta"], [M], sids=[3, 4], cmd_id=5)
    assert json.loads(unsub) == {"id": 5, "cmd": "unsubscribe", "params": {"sids": [3, 4]}}
    with pytest.raises(ValueError, match="sids"):
        kalshi.unsubscribe(["orderbook_delta"], [M])
    try:
        kalshi.subscribe(["trade"], [f"T-{i}" for i in range(501)])
    except ValueError as exc:
        assert "shard" in str(exc)
    else:
        raise AssertionError("501 markets accepted")


# -- fuzz --------------------------------------------------------------------------------

GOOD = frame(
    "orderbook_delta",
    2,
    price_dollars="0.4200",
    delta_fp="50.00",
    side="yes",
    ts="2025-03-01T18:26:53.361842Z",
).encode()


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(GOOD) - 1))
def test_fuzz_truncated(cut: int) -> None:
    norm = kalshi.normalizer()
    out = norm.on_frame(GOOD[:cut], 1)
    assert [r.reason for r in out] == ["parse"] and norm.stats.parse_errors == 1


@settings(max_examples=150, deadline=None)
@given(
    junk=st.binary(max_size=200),
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=6),
        lambda k: st.lists(k, max_size=3) | st.dictionaries(st.text(max_size=6), k, max_size=3),
        max_leaves=12,
    ),
    kind=st.sampled_from(
        ["orderbook_snapshot", "orderbook_delta", "trade", "ticker", "market_lifecycle_v2"]
    ),
)
def test_fuzz_never_raises(junk: bytes, value: object, kind: str) -> None:
    norm = kalshi.normalizer()
    norm.on_frame(junk, 1)
    norm.on_frame(json.dumps({"type": kind, "sid": 1, "seq": 1, "msg": value}), 2)
    norm.on_frame(
        json.dumps(
            {
                "type": kind,
                "sid": 1,
                "seq": value,
                "msg": {
                    "market_ticker": M,
                    "yes_dollars_fp": value,
                    "price_dollars": value,
                    "delta_fp": value,
                    "side": "yes",
                },
            }
        ),
        3,
    )
    assert norm.stats.frames == 3


def test_fuzz_non_utf8_and_huge() -> None:
    norm = kalshi.normalizer()
    for bad in (b'{"type":"trade","msg":{"market_ticker":"\xff"}}', b"\x80" * 5000, b"[" * 100_000):
        (gap,) = norm.on_frame(bad, 1)
        assert gap.reason == "parse"
    assert norm.stats.parse_errors == 3
    levels = [[f"0.{i:04d}", "1"] for i in range(1, 5000)]
    (book,) = norm.on_frame(frame("orderbook_snapshot", 1, yes_dollars_fp=levels), 2)
    assert len(book.bids) == 4999
