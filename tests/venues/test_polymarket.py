"""Polymarket market channel: the 51-message crossing burst replayed value by value,
tick-size changes, price_change before book, golden messages, REST, fuzz."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.model.fixed import from_fixed, to_fixed
from ssmd.model.records import Book, Gap, InstrumentRecord, Quote, Status, Trade
from ssmd.venues import polymarket as pm
from ssmd.venues.base import SymbolInfo

E9 = 10**9
A = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


def msg(fixtures_dir: Path, name: str) -> bytes:
    return (fixtures_dir / "messages" / "polymarket" / name).read_bytes()


@pytest.fixture(scope="module")
def burst(fixtures_dir: Path) -> list[dict]:
    data = json.loads(msg(fixtures_dir, "ws_market_price_change_crossing_burst.json"))
    assert len(data) == 51
    return data


def test_burst_replay_gives_exactly_the_final_book(burst: list[dict]) -> None:
    norm = pm.normalizer()
    asset = burst[0]["asset_id"]
    for i, m in enumerate(burst[:50]):
        norm.on_frame(json.dumps(m), i)
    final = burst[50]
    assert final["event_type"] == "book" and final["asset_id"] == asset
    bids, asks = norm.book(asset).snapshot()
    want_bids = sorted(
        ((to_fixed(lv["price"]), to_fixed(lv["size"])) for lv in final["bids"]), reverse=True
    )
    want_asks = sorted((to_fixed(lv["price"]), to_fixed(lv["size"])) for lv in final["asks"])
    assert len(bids) == len(want_bids) == 23 and len(asks) == len(want_asks) == 23
    for got, want in zip(bids + asks, want_bids + want_asks, strict=True):
        assert got == want
    # a few by hand from the final book message: bid 0.29 x 2005 (added in #43), ask 0.301 x 45.83
    assert bids[0] == (290_000_000, 2005 * E9)
    assert asks[0] == (301_000_000, 45_830_000_000)
    assert [from_fixed(p) for p, _ in asks[:3]] == ["0.301", "0.387", "0.388"]


def test_burst_transient_crossing_is_not_a_gap(burst: list[dict]) -> None:
    norm = pm.normalizer()
    asset = burst[0]["asset_id"]
    other = burst[1]["price_changes"][1]["asset_id"]
    gaps = []
    for i, m in enumerate(burst):
        out = norm.on_frame(json.dumps(m), i)
        gaps += [r for r in out if isinstance(r, Gap)]
        book = norm.book(asset)
        if i == 47:  # bid 0.311 above ask 0.301 while the message says best_bid 0.29
            assert book.is_strictly_crossed()
            assert book.best_bid() == (311_000_000, 2000 * E9)
        if i == 48:  # still locked at 0.301 / 0.301
            assert book.is_locked() and book.best_bid()[0] == book.best_ask()[0] == 301_000_000
        if i == 49:
            assert not book.is_crossed() and book.best_bid() == (290_000_000, 2005 * E9)
    # the only gap: the market's other token, which has price_changes but no book
    assert [(g.reason, g.symbol) for g in gaps] == [("resync", other)]
    assert norm.stats.crossed == 0 and norm.stats.checksums_failed == 0
    # 46 single-message checks + the burst (#47-#49) that ends consistent
    assert norm.stats.checksums_verified == 47
    assert norm.stats.records == {"book": 51, "gap": 1}
    assert norm.take_resyncs() == []  # the other token was not asked for


def test_burst_records_carry_venue_values(burst: list[dict]) -> None:
    norm = pm.normalizer()
    (snap,) = norm.on_frame(json.dumps(burst[0]), 5)
    assert snap.snapshot and snap.ts_event == 1790658661234 * 10**6 and snap.ts_recv == 5
    assert snap.bids[0] == (300_000_000, 5000 * E9) and snap.asks[0] == (
        397_000_000,
        100_090_000_000,
    )
    out = norm.on_frame(json.dumps(burst[1]), 6)
    delta = next(r for r in out if isinstance(r, Book))
    assert (delta.snapshot, delta.bids, delta.asks) == (False, [(301_000_000, 1000 * E9)], [])


def test_crossing_that_outlives_its_burst_is_a_gap(burst: list[dict]) -> None:
    norm = pm.normalizer({burst[0]["asset_id"]: SymbolInfo("T", iid=3)})
    asset = burst[0]["asset_id"]
    for i, m in enumerate(burst[:48]):  # stop right after #47: book crossed
        norm.on_frame(json.dumps(m), i)
    later = {
        "event_type": "last_trade_price",
        "asset_id": asset,
        "market": "m",
        "price": "0.301",
        "size": "1",
        "side": "BUY",
        "timestamp": "1790658828000",
    }
    gap, trade = norm.on_frame(json.dumps(later), 99)
    assert isinstance(gap, Gap) and gap.reason == "crossed" and (gap.symbol, gap.iid) == ("T", 3)
    assert gap.ts_event == 1790658827000 * 10**6
    assert isinstance(trade, Trade) and trade.side == "buy"
    assert norm.book(asset) is None and norm.stats.crossed == 1
    (resync,) = norm.take_resyncs()
    assert resync.venue_symbols == (asset,)


def test_top_mismatch_after_burst_is_a_checksum_gap(fixtures_dir: Path) -> None:
    norm = pm.normalizer()
    norm.on_frame(msg(fixtures_dir, "ws_market_book_msg.json"), 1)  # 0.50 / 0.51
    change = {
        "event_type": "price_change",
        "market": "m",
        "timestamp": "1703875201000",
        "price_changes": [
            {
                "asset_id": A,
                "price": "0.49",
                "size": "10",
                "side": "BUY",
                "best_bid": "0.48",
                "best_ask": "0.51",
            }
        ],
    }
    norm.on_frame(json.dumps(change), 2)  # venue says 0.48: we say 0.50 -> pending
    assert norm.stats.checksums_failed == 0
    bbo = {
        "event_type": "best_bid_ask",
        "asset_id": A,
        "market": "m",
        "best_bid": "0.5",
        "best_ask": "0.51",
        "timestamp": "1703875202000",
    }
    gap, quote = norm.on_frame(json.dumps(bbo), 3)
    assert gap.reason == "checksum" and norm.stats.checksums_failed == 1
    assert isinstance(quote, Quote) and (quote.bid_sz, quote.ask_sz) == (0, 0)  # book gone


def test_tick_size_change_keeps_prices_exact(fixtures_dir: Path) -> None:
    norm = pm.normalizer()
    norm.on_frame(msg(fixtures_dir, "ws_market_book_msg.json"), 1)  # tick 0.01 grid
    (inst,) = norm.on_frame(msg(fixtures_dir, "ws_market_tick_size_msg.json"), 2)
    assert isinstance(inst, InstrumentRecord) and inst.tick_size == 10_000_000  # "0.01"
    finer = {
        "event_type": "tick_size_change",
        "asset_id": A,
        "market": "m",
        "old_tick_size": "0.01",
        "new_tick_size": "0.001",
        "timestamp": "1703875211000",
    }
    (inst,) = norm.on_frame(json.dumps(finer), 3)
    assert inst.tick_size == 1_000_000
    change = {
        "event_type": "price_change",
        "market": "m",
        "timestamp": "1703875212000",
        "price_changes": [
            {
                "asset_id": A,
                "price": "0.505",
                "size": "10",
                "side": "BUY",
                "best_bid": "0.505",
                "best_ask": "0.51",
            },
            {
                "asset_id": A,
                "price": "0.5099",
                "size": "1.5",
                "side": "SELL",
                "best_bid": "0.505",
                "best_ask": "0.5099",
            },
        ],
    }
    (book,) = norm.on_frame(json.dumps(change), 4)
    assert book.bids == [(505_000_000, 10 * E9)] and book.asks == [(509_900_000, 1_500_000_000)]
    bids, asks = norm.book(A).snapshot()
    assert [(from_fixed(p), from_fixed(s)) for p, s in bids] == [
        ("0.505", "10"),
        ("0.5", "200"),
        ("0.49", "350"),
    ]
    assert [from_fixed(p) for p, _ in asks] == ["0.5099", "0.51", "0.52"]
    assert norm.stats.checksums_verified == 1 and norm.stats.checksums_failed == 0
    coarser = dict(finer, old_tick_size="0.001", new_tick_size="0.01", timestamp="1703875213000")
    norm.on_frame(json.dumps(coarser), 5)
    assert norm.book(A).snapshot() == (bids, asks)  # levels off the new grid are kept as is


def test_price_change_before_any_book(fixtures_dir: Path) -> None:
    raw = msg(fixtures_dir, "ws_market_price_change_msg.json")
    norm = pm.normalizer({A: SymbolInfo(A)})
    (gap,) = norm.on_frame(raw, 1)
    assert gap.reason == "resync" and gap.symbol == A and norm.stats.parse_errors == 0
    assert norm.take_resyncs()[0].venue_symbols == (A,)
    assert norm.on_frame(raw, 2) == []  # reported once
    norm.on_frame(msg(fixtures_dir, "ws_market_book_msg.json"), 3)
    (book,) = norm.on_frame(raw, 4)  # now applied: BUY 0.51 x 150 (locks 0.51 ask: pending)
    assert book.bids == [(510_000_000, 150 * E9)]


def test_golden_messages(fixtures_dir: Path) -> None:
    (b,) = pm.normalizer().on_frame(msg(fixtures_dir, "ws_market_book_msg.json"), 1)
    assert (b.symbol, b.snapshot, b.ts_event) == (A, True, 1703875200000 * 10**6)
    assert b.bids == [(500_000_000, 200 * E9), (490_000_000, 350 * E9)]
    assert b.asks == [(510_000_000, 150 * E9), (520_000_000, 250 * E9)]
    (t,) = pm.normalizer().on_frame(msg(fixtures_dir, "ws_market_last_trade_msg.json"), 1)
    assert (t.price, t.size, t.side, t.ts_event) == (
        510_000_000,
        25 * E9,
        "buy",
        1703875202000 * 10**6,
    )
    (q,) = pm.normalizer().on_frame(msg(fixtures_dir, "ws_market_best_bid_ask_msg.json"), 1)
    assert (q.bid_px, q.ask_px, q.ts_event) == (730_000_000, 770_000_000, 1766789469958 * 10**6)
    assert q.symbol.startswith("8535495606243")
    new = pm.normalizer().on_frame(msg(fixtures_dir, "ws_market_new_market_msg.json"), 1)
    assert [(r.symbol[:8], r.tick_size, r.status, r.kind) for r in new] == [
        ("76043073", 10_000_000, "active", "binary"),
        ("31690934", 10_000_000, "active", "binary"),
    ]
    won, lost = pm.normalizer().on_frame(msg(fixtures_dir, "ws_market_resolved_msg.json"), 1)
    assert isinstance(won, Status) and (won.status, won.result) == ("resolved", "yes")
    assert won.symbol.startswith("76043073") and lost.result == "no" and "Yes" in won.reason
    (s,) = pm.normalizer().on_frame(msg(fixtures_dir, "ws_book_snapshot.json"), 1)
    assert s.bids[0] == (500_000_000, 200 * E9) and s.asks[0] == (510_000_000, 150 * E9)
    norm = pm.normalizer()
    assert norm.on_frame("PONG", 1) == [] and norm.stats.parse_errors == 0


def test_initial_dump_array(fixtures_dir: Path) -> None:
    book = json.loads(msg(fixtures_dir, "ws_market_book_msg.json"))
    other = dict(book, asset_id="1" * 77)
    out = pm.normalizer().on_frame(json.dumps([book, other]), 1)
    assert [r.symbol for r in out] == [A, "1" * 77]


def test_rest_markets(fixtures_dir: Path) -> None:
    t1, t2 = pm.parse_markets(msg(fixtures_dir, "clob_market_response.json"))
    assert t1.symbol == "1" + "0" * 75 + "1" and len(t1.symbol) == 77
    assert (t1.kind, t1.tick_size, t1.status, t1.quote) == ("binary", 10_000_000, "active", "USDC")
    assert t1.extra["outcome"] == "T1" and t2.extra["outcome"] == "Hanwha Life Esports"
    assert t1.expiry_ns == 1786147200 * E9 and t1.settlement == ""  # 2026-08-08T00:00:00Z
    up, down = pm.parse_markets(msg(fixtures_dir, "gamma_market.json"))
    assert (
        up.symbol
        == "104239898038807136052399800151408521467737075933964991162589336683346093173875"
    )
    assert (up.extra["outcome"], down.extra["outcome"]) == ("Up", "Down")
    assert (up.extra["slug"], up.tick_size, up.expiry_ns) == (
        "btc-updown-5m-1773307200",
        10_000_000,
        1773307500 * E9,
    )
    resolved = json.loads(msg(fixtures_dir, "clob_market_response.json"))
    resolved["closed"] = True
    resolved["tokens"][1]["winner"] = True
    a, b = pm.parse_clob_markets(json.dumps({"data": [resolved]}))
    assert (a.status, a.settlement, b.settlement) == ("resolved", "no", "yes")


def test_builders() -> None:
    first, *rest = pm.subscribe(["market"], [str(i) for i in range(3)])
    assert json.loads(first) == {
        "assets_ids": ["0", "1", "2"],
        "type": "market",
        "custom_feature_enabled": True,
    }
    assert rest == []
    (more,) = pm.subscribe(["market"], ["9"], initial=False)
    assert json.loads(more)["operation"] == "subscribe"
    unsub = json.loads(pm.unsubscribe(["market"], ["9"])[0])
    assert unsub == {"operation": "unsubscribe", "assets_ids": ["9"]}
    assert pm.heartbeat() == "PING"
    with pytest.raises(ValueError, match="shard"):
        pm.subscribe(["market"], [str(i) for i in range(501)])
    with pytest.raises(ValueError, match="unknown polymarket channel"):
        pm.subscribe(["user"], ["9"])


# -- fuzz --------------------------------------------------------------------------------

GOOD = json.dumps(
    {
        "event_type": "price_change",
        "market": "m",
        "timestamp": "1703875201000",
        "price_changes": [
            {
                "asset_id": A,
                "price": "0.51",
                "side": "BUY",
                "size": "1",
                "best_bid": "0.51",
                "best_ask": "0.52",
            }
        ],
    }
).encode()


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(GOOD) - 1))
def test_fuzz_truncated(cut: int) -> None:
    norm = pm.normalizer()
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
        [
            "book",
            "price_change",
            "last_trade_price",
            "tick_size_change",
            "best_bid_ask",
            "new_market",
            "market_resolved",
        ]
    ),
)
def test_fuzz_never_raises(junk: bytes, value: object, kind: str) -> None:
    norm = pm.normalizer()
    norm.on_frame(junk, 1)
    for field in ("bids", "price_changes", "price", "assets_ids", "timestamp"):
        norm.on_frame(
            json.dumps(
                {
                    "event_type": kind,
                    "asset_id": A,
                    "timestamp": "1",
                    "bids": [],
                    "asks": [],
                    field: value,
                }
            ),
            2,
        )
    assert norm.stats.frames == 6


def test_fuzz_non_utf8_and_huge() -> None:
    norm = pm.normalizer()
    for bad in (
        b'{"event_type":"book","asset_id":"\xff"}',
        b"\xfe" * 5000,
        b"[" * 100_000,
        b"{}",
        b"7",
    ):
        (gap,) = norm.on_frame(bad, 1)
        assert gap.reason == "parse"
    assert norm.stats.parse_errors == 5
    levels = [{"price": f"0.{i:05d}", "size": "1"} for i in range(1, 20000)]
    (book,) = norm.on_frame(
        json.dumps(
            {"event_type": "book", "asset_id": A, "timestamp": "1", "bids": levels, "asks": []}
        ),
        2,
    )
    assert len(book.bids) == 19999
