"""Coinbase Exchange (recording COINBASE.ws.28.0 + COINBASE.0) and Advanced Trade (messages).

Expected values were written by reading the raw frames, not our output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssmd.model.records import Book, Gap, InstrumentRecord, Quote, Trade
from ssmd.venues import coinbase_advanced as adv
from ssmd.venues import coinbase_exchange as cbe
from ssmd.venues.base import SymbolInfo

E9 = 10**9


def frames(path: Path) -> list[tuple[int, str]]:
    """Received frames of a cryptofeed ws recording: (ts_recv ns, payload)."""
    out = []
    for line in path.read_text().splitlines():
        if not line or line.startswith("wss"):
            continue
        ts, _, payload = line.partition(": ")
        whole, _, frac = ts.partition(".")
        out.append((int(whole) * E9 + int(frac.ljust(9, "0")[:9]), payload))
    return out


@pytest.fixture(scope="module")
def replay(fixtures_dir: Path) -> tuple[cbe.CoinbaseExchangeNormalizer, list]:
    norm = cbe.normalizer(feed="cb")
    records = []
    for ts, payload in frames(fixtures_dir / "recordings" / "COINBASE.ws.28.0"):
        records += norm.on_frame(payload, ts)
    return norm, records


def test_recording_parses_every_frame(replay) -> None:
    norm, records = replay
    assert norm.stats.frames == 9946
    assert norm.stats.parse_errors == 0
    assert norm.stats.sequence_gaps == 0
    # 10 snapshots + 9,719 l2update; 97 match + 10 last_match; 107 tickers.
    assert norm.stats.records == {"book": 9729, "trade": 107, "quote": 107}
    assert not [r for r in records if isinstance(r, Gap)]


def test_recording_books_stay_uncrossed(replay) -> None:
    norm, _ = replay
    assert norm.stats.crossed == 0
    assert len(norm.books.books) == 10
    for book in norm.books.books.values():
        assert not book.is_crossed()
        assert len(book) > 0


def test_recording_snapshot_values(replay) -> None:
    _, records = replay
    snap = next(r for r in records if isinstance(r, Book) and r.symbol == "SKL-USD")
    assert snap.snapshot
    # raw: "bids":[["0.7901","450.0"],...] "asks":[["0.7910","450.0"],...], 814 / 1341 levels
    assert snap.bids[0] == (790_100_000, 450 * E9)
    assert snap.asks[0] == (791_000_000, 450 * E9)
    assert (len(snap.bids), len(snap.asks)) == (814, 1341)


def test_recording_match_values(replay) -> None:
    _, records = replay
    trades = {r.trade_id: r for r in records if isinstance(r, Trade)}
    # {"type":"match","trade_id":280232,...,"side":"sell","size":"985",
    #  "price":"0.00001305","product_id":"SKL-BTC","sequence":177100030,
    #  "time":"2021-04-17T16:43:37.089723Z"}  -- maker sold, so the taker bought
    t = trades["280232"]
    assert (t.symbol, t.price, t.size, t.side, t.seq) == (
        "SKL-BTC",
        13_050,
        985 * E9,
        "buy",
        177100030,
    )
    assert t.ts_event == 1618677817_089723000
    assert t.ts_recv == 1618677817_129516100
    assert (t.venue, t.feed) == ("coinbase", "cb")
    # {"type":"match","trade_id":1568268,...,"side":"sell","size":"450","price":"0.791",
    #  "product_id":"SKL-USD","sequence":201390075,"time":"2021-04-17T16:43:37.121358Z"}
    t = trades["1568268"]
    assert (t.symbol, t.price, t.size, t.side, t.seq) == (
        "SKL-USD",
        791_000_000,
        450 * E9,
        "buy",
        201390075,
    )
    assert t.ts_event == 1618677817_121358000
    # last_match: {"trade_id":82007,"side":"buy","size":"1008.2","price":"0.5752",
    #  "product_id":"SKL-GBP","sequence":27883326,"time":"2021-04-17T16:43:29.571587Z"}
    t = trades["82007"]
    assert (t.symbol, t.price, t.size, t.side, t.seq) == (
        "SKL-GBP",
        575_200_000,
        1008_200_000_000,
        "sell",
        27883326,
    )
    assert t.ts_event == 1618677809_571587000


def test_recording_ticker_values(replay) -> None:
    _, records = replay
    quotes = [r for r in records if isinstance(r, Quote)]
    # {"type":"ticker","sequence":333938798,"product_id":"BAND-GBP","price":"14.7775",...,
    #  "best_bid":"14.7550","best_ask":"14.8060","side":"buy","time":"2021-04-17T16:43:30.244075Z"}
    q = quotes[0]
    assert (q.symbol, q.seq, q.bid_px, q.ask_px) == (
        "BAND-GBP",
        333938798,
        14_755_000_000,
        14_806_000_000,
    )
    assert (q.bid_sz, q.ask_sz) == (0, 0)  # the 2021 ticker carried no sizes
    assert q.ts_event == 1618677810_244075000
    # {"type":"ticker","sequence":27883326,"product_id":"SKL-GBP",...,"best_bid":"0.5752",
    #  "best_ask":"0.5771",...,"time":"2021-04-17T16:43:29.571587Z"}
    q = quotes[1]
    assert (q.symbol, q.bid_px, q.ask_px) == ("SKL-GBP", 575_200_000, 577_100_000)


def test_recording_l2update_values(fixtures_dir: Path) -> None:
    norm = cbe.normalizer()
    stream = frames(fixtures_dir / "recordings" / "COINBASE.ws.28.0")
    snaps = [(ts, p) for ts, p in stream if '"type":"snapshot"' in p]
    for ts, payload in snaps:
        norm.on_frame(payload, ts)
    # {"type":"l2update","product_id":"SKL-BTC","changes":[["sell","0.00001306","660.5"]],
    #  "time":"2021-04-17T16:43:37.075687Z"}
    raw = (
        '{"type":"l2update","product_id":"SKL-BTC","changes":[["sell","0.00001306","660.5"]],'
        '"time":"2021-04-17T16:43:37.075687Z"}'
    )
    assert raw in [p for _, p in stream]
    (rec,) = norm.on_frame(raw, 1)
    assert isinstance(rec, Book) and not rec.snapshot
    assert (rec.bids, rec.asks) == ([], [(13_060, 660_500_000_000)])
    assert rec.ts_event == 1618677817_075687000
    assert norm.books.books["SKL-BTC"].size_at("ask", 13_060) == 660_500_000_000


def test_products_load(fixtures_dir: Path) -> None:
    body = (fixtures_dir / "recordings" / "COINBASE.0").read_text().splitlines()[0]
    url, _, rest = body.partition(" -> ")
    instruments = cbe.parse_products(rest.partition(": ")[2])
    assert len(instruments) == 162
    by = {i.symbol: i for i in instruments}
    # {"id":"SKL-EUR","base_currency":"SKL","quote_currency":"EUR",...,"quote_increment":"0.0001",
    #  "base_increment":"0.1",...,"status":"online"}
    skl = by["SKL-EUR"]
    assert (skl.venue_symbol, skl.kind, skl.base, skl.quote) == ("SKL-EUR", "spot", "SKL", "EUR")
    assert (skl.tick_size, skl.lot_size, skl.status) == (100_000, 100_000_000, "open")
    btc = by["BTC-GBP"]
    assert (btc.tick_size, btc.lot_size) == (10_000_000, 10)
    recs = cbe.normalizer().on_rest(url, rest.partition(": ")[2], 5)
    assert len(recs) == 162 and all(isinstance(r, InstrumentRecord) for r in recs)


def test_symbols_map_through_secmaster() -> None:
    norm = cbe.normalizer({"BTC-USD": SymbolInfo("BTC-USD", iid=42)})
    frame = {
        "type": "match",
        "trade_id": 10,
        "side": "buy",
        "size": "1",
        "price": "2",
        "product_id": "BTC-USD",
        "sequence": 5,
        "time": "2021-04-17T16:43:37Z",
    }
    (t,) = norm.on_frame(json.dumps(frame), 1)
    assert (t.iid, t.side, t.ts_event) == (42, "sell", 1618677817 * E9)


def _matches(fixtures_dir: Path) -> list[tuple[int, str]]:
    stream = frames(fixtures_dir / "recordings" / "COINBASE.ws.28.0")
    return [(ts, p) for ts, p in stream if '"type":"match"' in p and "SKL-USD" in p]


def test_dropped_match_is_a_sequence_gap(fixtures_dir: Path) -> None:
    matches = _matches(fixtures_dir)
    assert len(matches) > 3
    norm = cbe.normalizer()
    out = []
    for i, (ts, p) in enumerate(matches):
        if i != 2:
            out += norm.on_frame(p, ts)
    gaps = [r for r in out if isinstance(r, Gap)]
    assert len(gaps) == 1 and gaps[0].reason == "sequence" and gaps[0].symbol == "SKL-USD"
    assert "1 trade(s) missed" in gaps[0].detail
    assert norm.stats.sequence_gaps == 1


def test_duplicated_match_is_dropped_with_a_gap(fixtures_dir: Path) -> None:
    (ts, p), *_ = _matches(fixtures_dir)
    norm = cbe.normalizer()
    assert isinstance(norm.on_frame(p, ts)[0], Trade)
    (gap,) = norm.on_frame(p, ts + 1)
    assert isinstance(gap, Gap) and gap.reason == "sequence" and "duplicate" in gap.detail


def test_crossing_update_drops_book_and_resyncs() -> None:
    norm = cbe.normalizer()
    snap = {"type": "snapshot", "product_id": "X-USD", "bids": [["10", "1"]], "asks": [["11", "1"]]}
    norm.on_frame(json.dumps(snap), 1)
    upd = {
        "type": "l2update",
        "product_id": "X-USD",
        "changes": [["buy", "12", "1"]],
        "time": "2021-04-17T16:43:37Z",
    }
    book, gap = norm.on_frame(json.dumps(upd), 2)
    assert isinstance(book, Book) and isinstance(gap, Gap) and gap.reason == "crossed"
    assert norm.take_resyncs()[0].venue_symbols == ("X-USD",)
    assert norm.on_frame(json.dumps(upd), 3) == []  # dropped until the next snapshot
    assert norm.stats.crossed == 1


def test_exchange_builders() -> None:
    (frame,) = cbe.subscribe(cbe.INFO.channels, ["BTC-USD", "ETH-USD", "BTC-USD"])
    assert json.loads(frame) == {
        "type": "subscribe",
        "product_ids": ["BTC-USD", "ETH-USD"],
        "channels": ["level2", "ticker", "matches"],
    }
    assert json.loads(cbe.unsubscribe(["ticker"], ["BTC-USD"])[0])["type"] == "unsubscribe"
    assert json.loads(cbe.subscribe(["heartbeat"], ["BTC-USD"])[0])["channels"] == ["heartbeat"]
    assert cbe.heartbeat() is None
    with pytest.raises(ValueError, match="shard"):
        cbe.subscribe(["ticker"], [f"P{i}-USD" for i in range(101)])
    with pytest.raises(ValueError, match="unknown coinbase-exchange channel"):
        cbe.subscribe(["full"], ["BTC-USD"])


# -- Advanced Trade (docs-example messages: shapes and field mapping) ----------------------


def msg(fixtures_dir: Path, name: str) -> bytes:
    return (fixtures_dir / "messages" / "coinbase" / name).read_bytes()


def test_advanced_l2_snapshot_and_update(fixtures_dir: Path) -> None:
    norm = adv.normalizer()
    (snap,) = norm.on_frame(msg(fixtures_dir, "ws_l2_data_snapshot.json"), 1)
    assert isinstance(snap, Book) and snap.snapshot and snap.symbol == "BTC-USD"
    assert snap.bids == [
        (68900 * E9, 1_500_000_000),
        (68899_500_000_000, 750_000_000),
        (68899 * E9, 2_300_000_000),
    ]
    assert snap.asks == [
        (68901 * E9, 500_000_000),
        (68901_500_000_000, 1_200_000_000),
        (68902 * E9, 800_000_000),
    ]
    assert (snap.seq, snap.ts_event) == (0, 1775572200_123456000)  # 2026-04-07T14:30:00.123456Z
    (upd,) = norm.on_frame(msg(fixtures_dir, "ws_l2_data_update.json"), 2)
    assert (upd.snapshot, upd.seq) == (False, 1)
    assert upd.bids == [(68900 * E9, 2 * E9)] and upd.asks == [(68901 * E9, 0)]
    book = norm.books.books["BTC-USD"]
    assert book.best_ask() == (68901_500_000_000, 1_200_000_000)
    assert norm.stats.sequence_gaps == 0


def test_advanced_sequence_jump_is_a_gap(fixtures_dir: Path) -> None:
    norm = adv.normalizer()
    norm.on_frame(msg(fixtures_dir, "ws_l2_data_snapshot.json"), 1)  # sequence_num 0
    norm.on_frame(msg(fixtures_dir, "ws_l2_data_update.json"), 2)  # 1
    out = norm.on_frame(msg(fixtures_dir, "ws_market_trades.json"), 3)  # 5: 2..4 lost
    gap = out[0]
    assert isinstance(gap, Gap) and gap.reason == "sequence" and gap.symbol == "BTC-USD"
    assert "3 message(s) lost" in gap.detail and (gap.since_ns, gap.until_ns) == (2, 3)
    assert [type(r) for r in out[1:]] == [Trade, Trade]  # trades still published
    (resync,) = norm.take_resyncs()
    assert (resync.action, resync.venue_symbols) == ("resubscribe", ("BTC-USD",))
    assert "BTC-USD" not in norm.books.books
    assert norm.stats.sequence_gaps == 1
    # a replayed (stale) sequence_num is dropped with a gap
    (stale,) = norm.on_frame(msg(fixtures_dir, "ws_l2_data_update.json"), 4)
    assert stale.reason == "sequence" and "dropped" in stale.detail


def test_advanced_trades_and_ticker(fixtures_dir: Path) -> None:
    t1, t2 = adv.normalizer().on_frame(msg(fixtures_dir, "ws_market_trades.json"), 1)
    # {"trade_id":"995098700","product_id":"BTC-USD","price":"68900.50","size":"0.00150000",
    #  "side":"BUY","time":"2026-04-07T14:30:02.789012Z"}: maker side BUY -> aggressor sell
    assert (t1.trade_id, t1.price, t1.size, t1.side) == (
        "995098700",
        68900_500_000_000,
        1_500_000,
        "sell",
    )
    assert (t1.seq, t1.ts_event) == (5, 1775572202_789012000)
    assert (t2.trade_id, t2.side, t2.price) == ("995098701", "buy", 68900 * E9)
    (q,) = adv.normalizer().on_frame(msg(fixtures_dir, "ws_ticker.json"), 1)
    assert (q.bid_px, q.bid_sz, q.ask_px, q.ask_sz) == (
        68900 * E9,
        1_500_000_000,
        68901 * E9,
        500_000_000,
    )
    assert (q.seq, q.ts_event) == (12, 1775572203 * E9)
    assert adv.normalizer().on_frame(msg(fixtures_dir, "ws_heartbeats.json"), 1) == []
    assert adv.normalizer().on_frame(msg(fixtures_dir, "ws_subscriptions.json"), 1) == []


def test_advanced_rest_products(fixtures_dir: Path) -> None:
    (usd, usdc) = adv.parse_products(msg(fixtures_dir, "http_products.json"))
    assert (usd.symbol, usd.kind, usd.base, usd.quote, usd.status) == (
        "BTC-USD",
        "spot",
        "BTC",
        "USD",
        "open",
    )
    assert (usd.tick_size, usd.lot_size) == (10_000_000, 10)
    assert usdc.symbol == "BTC-USDC" and usdc.extra["alias"] == "BTC-USD"
    perp, fut = adv.parse_products(msg(fixtures_dir, "http_products_future.json"))
    assert (perp.symbol, perp.kind, perp.base, perp.tick_size, perp.lot_size) == (
        "BIP-20DEC30-CDE",
        "perp",
        "BTC",
        5 * E9,
        E9,
    )
    assert perp.expiry_ns == 1924012800 * E9  # 2030-12-20T16:00:00Z
    assert (fut.kind, fut.expiry_ns) == ("future", 1777042800 * E9)  # 2026-04-24T15:00:00Z
    (single,) = adv.parse_products(msg(fixtures_dir, "http_product.json"))
    assert single.symbol == "BTC-USD"


def test_advanced_builders() -> None:
    chans = ["level2", "market_trades", "heartbeats"]
    frames_ = [json.loads(f) for f in adv.subscribe(chans, ["BTC-USD"])]
    assert frames_ == [
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "market_trades"},
        {"type": "subscribe", "channel": "heartbeats"},
    ]
    assert adv.heartbeat() is None
    assert json.loads(adv.unsubscribe(["ticker"], ["A-B"], jwt="t")[0])["jwt"] == "t"


# -- fuzz: nothing escapes, every bad frame is one gap(parse) -----------------------------

GOOD = [
    b'{"type":"l2update","product_id":"SKL-BTC","changes":[["sell","0.00001306","660.5"]],"time":"2021-04-17T16:43:37.075687Z"}',
    b'{"type":"match","trade_id":1,"side":"sell","size":"985","price":"0.1","product_id":"A-B","sequence":1,"time":"2021-04-17T16:43:37.089723Z"}',
    b'{"channel":"l2_data","timestamp":"2026-04-07T14:30:00Z","sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"2026-04-07T14:30:00Z","price_level":"1","new_quantity":"2"}]}]}',
]


def _check_bad(norm, frame: bytes | str) -> None:
    before = norm.stats.parse_errors
    out = norm.on_frame(frame, 1)
    assert len(out) == 1 and isinstance(out[0], Gap) and out[0].reason == "parse"
    assert norm.stats.parse_errors == before + 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(good=st.sampled_from(GOOD), cut=st.integers(min_value=0, max_value=200))
def test_fuzz_truncated_frames(good: bytes, cut: int) -> None:
    frame = good[: min(cut, len(good) - 1)]
    for norm in (cbe.normalizer(), adv.normalizer()):
        _check_bad(norm, frame)


@settings(max_examples=150, deadline=None)
@given(junk=st.binary(max_size=300))
def test_fuzz_random_bytes_never_raise(junk: bytes) -> None:
    for norm in (cbe.normalizer(), adv.normalizer()):
        out = norm.on_frame(junk, 1)
        assert norm.stats.frames == 1
        if norm.stats.parse_errors:
            assert [r.reason for r in out] == ["parse"]


@settings(max_examples=100, deadline=None)
@given(
    value=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=8),
        lambda kids: (
            st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
        ),
        max_leaves=20,
    ),
    kind=st.sampled_from(["l2update", "snapshot", "match", "ticker", "last_match"]),
    channel=st.sampled_from(["l2_data", "market_trades", "ticker"]),
)
def test_fuzz_wrong_field_types(value: object, kind: str, channel: str) -> None:
    """Right envelope, garbage inside: a parse gap, never an exception."""
    frame = json.dumps(
        {
            "type": kind,
            "product_id": "A-B",
            "changes": value,
            "bids": value,
            "asks": value,
            "price": value,
            "sequence": 1,
            "trade_id": value,
        }
    )
    cbe.normalizer().on_frame(frame, 1)
    frame = json.dumps({"channel": channel, "sequence_num": 0, "events": value})
    adv.normalizer().on_frame(frame, 1)


def test_fuzz_non_utf8_and_huge() -> None:
    for norm in (cbe.normalizer(), adv.normalizer()):
        _check_bad(norm, b'{"type":"match","price":"\xff\xfe"}')
        _check_bad(norm, b"\xc3\x28" * 1000)
        _check_bad(norm, b"[" * 100_000)
        _check_bad(norm, "{" + '"a":1,' * 200_000)
    huge = {
        "type": "l2update",
        "product_id": "A-B",
        "time": "2021-04-17T16:43:37Z",
        "changes": [["buy", f"{i}.5", "1"] for i in range(50_000)],
    }
    norm = cbe.normalizer()
    norm.on_frame('{"type":"snapshot","product_id":"A-B","bids":[],"asks":[["1000000","1"]]}', 0)
    (book,) = norm.on_frame(json.dumps(huge), 1)
    assert len(book.bids) == 50_000 and norm.stats.parse_errors == 0
