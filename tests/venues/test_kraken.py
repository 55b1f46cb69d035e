"""Kraken spot WS v1 on the real recordings; expected values read from the raw frames."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from ssmd.capture.derive import Deriver
from ssmd.cli.venue import load_recording, replay, verify_path
from ssmd.model.fixed import to_fixed
from ssmd.model.records import Book, Quote, Trade
from ssmd.venues import kraken_v1
from ssmd.venues.kraken_common import asset, normalize_pair, parse_asset_pairs
from ssmd.venues.kraken_v1 import KrakenV1Normalizer


def _records(path: Path) -> list:
    frames, _ = load_recording(path)
    out: list = []
    replay(Deriver("kraken-v1"), frames, out)
    return out


def test_book_checksums_all_verify(fixtures_dir: Path) -> None:
    report = verify_path(fixtures_dir / "recordings" / "KRAKEN.ws.50.0")
    assert report["frames"] == 4321
    assert report["checksums_verified"] == 4269
    assert report["checksums_failed"] == 0
    assert report["records"] == {"book": 4279}
    assert report["crossed"] == 0 and report["parse_errors"] == 0
    assert report["ok"] is True


def test_book_values(fixtures_dir: Path) -> None:
    out = _records(fixtures_dir / "recordings" / "KRAKEN.ws.50.0")
    chf = [r for r in out if isinstance(r, Book) and r.symbol == "BTC-CHF"]
    snap = chf[0]
    assert snap.snapshot is True
    # first ask of the raw snapshot: ["56218.30000","0.15000000","1618678117.243818"]
    assert snap.asks[0] == (to_fixed("56218.3"), to_fixed("0.15"))
    assert snap.ts_recv == 1618678133710264000
    # line 61: [464,{"a":[["56872.70000","0.01000000","1618678133.924027"]],"c":...}]
    upd = next(r for r in chf[1:] if r.ts_recv == 1618678134259469000)
    assert upd.snapshot is False
    assert upd.asks == [(56_872_700_000_000, 10_000_000)] and upd.bids == []
    assert upd.ts_event == 1618678133924027000
    # line 88: a bid delete ["55978.50000","0.00000000","1618678134.117415"]
    dele = next(r for r in chf if r.ts_recv == 1618678134288168000)
    assert dele.bids == [(55_978_500_000_000, 0)]
    # the absurd 9999999997 CHF ask does not fit int64 nanos: kept in the book, not published
    assert all(px <= 2**63 - 1 for px, _ in snap.asks)


def test_trades_hand_checked(fixtures_dir: Path) -> None:
    out = _records(fixtures_dir / "recordings" / "KRAKEN.ws.48.0")
    trades = [r for r in out if isinstance(r, Trade)]
    assert len(trades) == 10
    # line 35: two XMR/USD sells in one frame
    two = [t for t in trades if t.ts_recv == 1618678150856557100]
    assert [(t.price, t.size, t.side, t.ts_event) for t in two] == [
        (354_040_000_000, 282_453_960, "sell", 1618678150826417000),
        (353_810_000_000, 1_717_546_040, "sell", 1618678150827816000),
    ]
    # line 28: ["354.55000000","1.25690315","1618678145.715785","b","m",""]
    buy = next(t for t in trades if t.ts_recv == 1618678145744650000)
    assert (buy.symbol, buy.price, buy.size, buy.side) == (
        "XMR-USD",
        354_550_000_000,
        1_256_903_150,
        "buy",
    )
    sc = next(t for t in trades if t.ts_recv == 1618678145948901200)
    assert (sc.symbol, sc.price, sc.size) == ("SC-EUR", 42_990_000, 15_979_717_279_190)


def test_tickers_hand_checked(fixtures_dir: Path) -> None:
    out = _records(fixtures_dir / "recordings" / "KRAKEN.ws.49.0")
    quotes = [r for r in out if isinstance(r, Quote)]
    assert len(quotes) == 18
    assert {q.symbol for q in quotes} == {
        "WAVES-EUR", "XMR-USD", "KSM-BTC", "GRT-ETH", "SC-EUR",
        "ETH-CHF", "OCEAN-BTC", "OMG-USD", "BTC-CHF", "ADA-BTC",
    }  # fmt: skip
    # "a":["13.253900",35,"35.72892241"],"b":["13.232900",185,"185.18432037"]
    waves = quotes[0]
    assert waves.symbol == "WAVES-EUR" and waves.ts_recv == 1618678132949649800
    assert (waves.bid_px, waves.bid_sz) == (13_232_900_000, 185_184_320_370)
    assert (waves.ask_px, waves.ask_sz) == (13_253_900_000, 35_728_922_410)
    ksm = quotes[2]  # "a":["0.00758800",1,"1.30832721"],"b":["0.00758000",0,"0.21000000"]
    assert (ksm.symbol, ksm.bid_px, ksm.bid_sz, ksm.ask_px, ksm.ask_sz) == (
        "KSM-BTC", 7_580_000, 210_000_000, 7_588_000, 1_308_327_210,
    )  # fmt: skip


def test_asset_pairs_recording(fixtures_dir: Path) -> None:
    body = (fixtures_dir / "recordings" / "KRAKEN.0").read_text().splitlines()[0]
    pairs = parse_asset_pairs(body.split(": ", 1)[1])
    assert len(pairs) == 304
    by = {p.venue_symbol: p for p in pairs}
    xbt = by["XBT/USD"]  # pair_decimals 1, lot_decimals 8, base XXBT, quote ZUSD
    assert (xbt.symbol, xbt.base, xbt.quote) == ("BTC-USD", "BTC", "USD")
    assert (xbt.tick_size, xbt.lot_size) == (100_000_000, 10)
    assert xbt.extra["rest_name"] == "XXBTZUSD" and xbt.extra["ordermin"] == "0.0002"
    assert by["XDG/USD"].symbol == "DOGE-USD"
    assert by["ADA/XBT"].tick_size == 10  # pair_decimals 8


def test_asset_pairs_message_file(fixtures_dir: Path) -> None:
    # capture-like: XBTUSDT with tick_size "0.1", status "online"
    pairs = parse_asset_pairs((fixtures_dir / "messages/kraken/http_asset_pairs.json").read_bytes())
    (p,) = [p for p in pairs if p.venue_symbol == "XBT/USDT"]
    assert (p.symbol, p.tick_size, p.lot_size, p.status) == ("BTC-USDT", 10**8, 10, "open")
    assert p.extra["costmin"] == "0.5"


def test_symbol_normalization() -> None:
    assert normalize_pair("XBT/USD") == "BTC-USD"
    assert normalize_pair("XDG/EUR") == "DOGE-EUR"
    assert asset("XXBT") == "BTC" and asset("ZUSD") == "USD" and asset("AAVE") == "AAVE"


def test_subscribe_builders_honour_limits() -> None:
    pairs = [f"P{i}/USD" for i in range(75)]
    frames = [msgspec.json.decode(f) for f in kraken_v1.subscribe(["book"], pairs, depth=100)]
    assert [len(f["pair"]) for f in frames] == [50, 25]
    assert frames[0]["subscription"] == {"name": "book", "depth": 100}
    assert frames[0]["event"] == "subscribe"
    un = msgspec.json.decode(kraken_v1.unsubscribe(["trade"], ["XBT/USD"])[0])
    assert un == {"event": "unsubscribe", "pair": ["XBT/USD"], "subscription": {"name": "trade"}}
    both = [msgspec.json.decode(f) for f in kraken_v1.subscribe(["trade", "book"], ["XBT/USD"])]
    assert [f["subscription"] for f in both] == [{"name": "trade"}, {"name": "book", "depth": 1000}]
    assert msgspec.json.decode(kraken_v1.heartbeat()) == {"event": "ping"}
    with pytest.raises(ValueError, match="per connection"):
        kraken_v1.subscribe(["trade"], [f"P{i}/USD" for i in range(101)])
    with pytest.raises(ValueError, match="depth"):
        kraken_v1.subscribe(["book"], ["XBT/USD"], depth=7)
    with pytest.raises(ValueError, match="unknown kraken-v1 channel"):
        kraken_v1.subscribe(["ohlc-5"], ["XBT/USD"])


def test_golden_messages_shape(fixtures_dir: Path) -> None:
    """The message files are v2 / futures docs examples: they must not crash v1 and must
    not be mistaken for v1 data."""
    n = KrakenV1Normalizer()
    for path in sorted((fixtures_dir / "messages" / "kraken").glob("ws_*.json")):
        out = n.on_frame(path.read_bytes(), 1)
        assert all(r.__struct_config__.tag in ("gap",) for r in out), path.name
