"""Binance spot on the real recording: REST snapshots stitched to diffs, values by hand."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from ssmd.capture.derive import Deriver
from ssmd.cli.venue import load_recording, replay, verify_path
from ssmd.model.records import Book, Quote, Trade
from ssmd.venues import binance
from ssmd.venues.binance import BinanceNormalizer, parse_exchange_info

REC = "recordings/BINANCE.ws.1.0"


def _replay(path: Path) -> tuple[BinanceNormalizer, list]:
    frames, _ = load_recording(path)
    deriver = Deriver("binance")
    out: list = []
    replay(deriver, frames, out)
    assert isinstance(deriver.normalizer, BinanceNormalizer)
    return deriver.normalizer, out


def test_stitches_all_four_snapshots(fixtures_dir: Path) -> None:
    n, out = _replay(fixtures_dir / REC)
    snaps = {r.symbol: r.seq for r in out if isinstance(r, Book) and r.snapshot}
    assert snaps == {
        "NKN-USDT": 499869752, "BLZ-ETH": 281916627, "LRC-BTC": 259345543, "RUNE-EUR": 15602511,
    }  # fmt: skip
    assert n.stats.sequence_gaps == 0 and n.stats.crossed == 0 and n.stats.parse_errors == 0
    deltas = [r for r in out if isinstance(r, Book) and not r.snapshot]
    # 177 depth frames; 1-2 per symbol predate their snapshot (u <= lastUpdateId) and drop
    assert len(deltas) == 172
    for sym, state in n.books.items():
        assert state.valid and state.stitch.synced, sym
    # continuity: per symbol, each delta's seq (u) is increasing and the first straddles
    nkn = [r.seq for r in deltas if r.symbol == "NKN-USDT"]
    assert nkn[0] > 499869752 and nkn == sorted(nkn) and len(nkn) == 149
    assert n.books["NKNUSDT"].stitch.last_update_id == 499870179
    # NKNUSDT snapshot: 609 bids / 1000 asks
    nkn_snap = next(r for r in out if isinstance(r, Book) and r.symbol == "NKN-USDT")
    assert (len(nkn_snap.bids), len(nkn_snap.asks)) == (609, 1000)
    assert nkn_snap.bids[0] == (352_100_000, 672_000_000_000)  # ["0.35210000","672.00000000"]


def test_asks_for_each_snapshot_once_before_it_arrives(fixtures_dir: Path) -> None:
    """The runtime learns *when* to fetch a depth snapshot from the normalizer: on a
    symbol's first buffered diff (Binance: buffer, then fetch), once per symbol."""
    frames, _ = load_recording(fixtures_dir / REC)
    n = BinanceNormalizer()
    asked: dict[str, int] = {}
    got: dict[str, int] = {}
    for f in frames:
        if f.direction == "in":
            n.on_frame(f.payload, f.ts_recv)
        elif f.direction == "rest" and "/depth" in f.endpoint:
            got[f.endpoint.split("symbol=")[1].split("&")[0]] = f.ts_recv
            n.on_rest(f.endpoint, f.payload, f.ts_recv)
        for r in n.take_resyncs():
            assert (r.action, r.reason, r.frames) == (
                "refetch_snapshot",
                "no depth snapshot yet",
                (),
            )
            (sym,) = r.venue_symbols
            assert sym not in asked
            asked[sym] = f.ts_recv
    assert sorted(asked) == sorted(got) == ["BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR"]
    assert all(asked[s] <= got[s] for s in asked)
    assert binance.snapshot_url("NKNUSDT").startswith(binance.INFO.rest_url + "/depth?")


def test_diff_values(fixtures_dir: Path) -> None:
    _, out = _replay(fixtures_dir / REC)
    # line 3: U=499869753 u=499869754 b [["0.35170000","4265.00000000"]] a [["0.35290000",...]]
    d = next(r for r in out if isinstance(r, Book) and r.seq == 499869754)
    assert d.bids == [(351_700_000, 4_265_000_000_000)]
    assert d.asks == [(352_900_000, 10_968_000_000_000)]
    assert d.ts_event == 1633998512568_000_000 and d.ts_recv == 1633998512564785000
    # line 9 bookTicker: u 499869768, b 0.35210000 x 672, a 0.35260000 x 3199
    q = next(r for r in out if isinstance(r, Quote))
    assert (q.symbol, q.seq, q.bid_px, q.bid_sz, q.ask_px, q.ask_sz) == (
        "NKN-USDT", 499869768, 352_100_000, 672 * 10**9, 352_600_000, 3199 * 10**9,
    )  # fmt: skip
    # line 110 aggTrade: a 15683430, p 0.35280000, q 58, T 1633998523963, m false -> buy
    t = next(r for r in out if isinstance(r, Trade) and r.symbol == "NKN-USDT")
    assert (t.trade_id, t.price, t.size, t.side, t.ts_event) == (
        "a15683430", 352_800_000, 58 * 10**9, "buy", 1633998523963_000_000,
    )  # fmt: skip


def test_verify_cli_report(fixtures_dir: Path) -> None:
    report = verify_path(fixtures_dir / REC)
    assert report["venue"] == "binance"
    assert report["records"] == {"book": 176, "quote": 84, "trade": 2}
    assert report["ok"] is True


def test_exchange_info(fixtures_dir: Path) -> None:
    line = (fixtures_dir / "recordings/BINANCE.0").read_text().splitlines()[0]
    ins = {i.venue_symbol: i for i in parse_exchange_info(line.split(": ", 1)[1])}
    assert len(ins) == 1695
    nkn = ins["NKNUSDT"]  # tickSize 0.00010000, stepSize 1.00000000, TRADING
    assert (nkn.symbol, nkn.tick_size, nkn.lot_size, nkn.status) == (
        "NKN-USDT", 100_000, 10**9, "open",
    )  # fmt: skip
    # docs example file: shape only
    doc = parse_exchange_info(
        (fixtures_dir / "messages/binance/spot/exchange_info_response.json").read_bytes()
    )
    assert doc and all(i.venue == "binance" and i.symbol.count("-") == 1 for i in doc)


def test_golden_ws_messages(fixtures_dir: Path) -> None:
    d = fixtures_dir / "messages/binance/spot"
    n = BinanceNormalizer()
    (trade,) = n.on_frame((d / "ws_spot_trade.json").read_bytes(), 5)
    assert isinstance(trade, Trade)  # capture-like: ETHUSDT 4149.74 x 0.4387, m true -> sell
    assert (trade.price, trade.size, trade.side, trade.trade_id) == (
        4_149_740_000_000, 438_700_000, "sell", "705291099",
    )  # fmt: skip
    (agg,) = n.on_frame((d / "ws_spot_agg_trade.json").read_bytes(), 5)
    assert isinstance(agg, Trade) and agg.trade_id == "a226532" and agg.side == "buy"
    (quote,) = n.on_frame((d / "ws_spot_ticker_book.json").read_bytes(), 5)
    assert isinstance(quote, Quote) and quote.seq == 12711621188
    assert quote.ts_event == 1646199228123_000_000
    # REST depth (capture-like) seeds a book
    snap = n.on_rest("https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=10",
                     (d / "spot_market_depth.json").read_bytes(), 9)  # fmt: skip
    assert isinstance(snap[0], Book) and snap[0].seq == 14527958487 and len(snap[0].bids) == 10


def test_builders() -> None:
    channels = ["depth", "bookTicker", "trade", "aggTrade"]
    symbols = [f"S{i}USDT" for i in range(60)]
    frames = [msgspec.json.decode(f) for f in binance.subscribe(channels, symbols)]
    assert [len(f["params"]) for f in frames] == [200, 40]
    assert frames[0]["params"][:2] == ["s0usdt@depth@100ms", "s0usdt@bookTicker"]
    assert [f["id"] for f in frames] == [1, 2] and frames[0]["method"] == "SUBSCRIBE"
    with pytest.raises(ValueError, match="256 per connection; shard"):
        binance.subscribe(channels, [f"S{i}" for i in range(257)])
    assert len(binance.streams(channels, [f"S{i}" for i in range(256)])) == 1024  # the cap
    with pytest.raises(ValueError, match="unknown binance channel"):
        binance.subscribe(["kline"], ["NKNUSDT"])
    url = binance.snapshot_url("nknusdt")
    assert url == "https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000"
    assert binance.snapshot_url("NKNUSDT", 100).endswith("limit=100")
    with pytest.raises(ValueError, match="limit"):
        binance.snapshot_url("NKNUSDT", 7)
    assert binance.heartbeat() is None
