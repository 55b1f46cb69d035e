"""The secmaster: stable iids, effective-dated history, point-in-time answers."""

from __future__ import annotations

import psycopg
import pytest

from ssmd.meta import instruments
from ssmd.meta.instruments import HistoryError, normalize_symbol
from ssmd.model.fixed import to_fixed
from ssmd.model.instrument import Instrument

T0, T1, T2 = 1_000, 2_000, 3_000

XBT = Instrument(
    venue="kraken-v2",
    venue_symbol="XBT/USD",
    symbol="btc-usd",
    kind="spot",
    base="btc",
    quote="usd",
    tick_size=to_fixed("0.1"),
    lot_size=to_fixed("0.00000001"),
)
ETH = Instrument(venue="kraken-v2", venue_symbol="ETH/USD", symbol="ETH-USD", kind="spot")
BN = Instrument(venue="binance", venue_symbol="BTCUSDT", symbol="BTC-USDT", kind="spot")


def test_new_instrument_gets_an_iid_and_normalized_fields(conn: psycopg.Connection) -> None:
    done = instruments.upsert(conn, XBT, T0, recorded_ns=5)
    assert done.outcome == "created"
    v = done.version
    assert (v.iid, v.venue, v.venue_symbol, v.symbol) == (
        done.iid,
        "kraken-v2",
        "XBT/USD",
        "BTC-USD",
    )
    assert (v.base, v.quote, v.kind, v.status) == ("BTC", "USD", "spot", "open")
    assert (v.tick_size, v.lot_size) == (100_000_000, 10)
    assert (v.valid_from, v.valid_to, v.recorded_ns) == (T0, None, 5)
    assert v.instrument() == Instrument(
        venue="kraken-v2",
        venue_symbol="XBT/USD",
        symbol="BTC-USD",
        kind="spot",
        base="BTC",
        quote="USD",
        tick_size=100_000_000,
        lot_size=10,
    )


def test_iids_are_stable_distinct_and_never_reused(conn: psycopg.Connection) -> None:
    a = instruments.upsert(conn, XBT, T0).iid
    b = instruments.upsert(conn, ETH, T0).iid
    assert a != b
    assert instruments.upsert(conn, XBT, T1).iid == a  # identical: same iid, no-op
    changed = instruments.upsert(conn, XBT.__replace__(status="halted"), T1)
    assert (changed.iid, changed.outcome) == (a, "changed")
    conn.rollback()  # even a rolled-back allocation never hands its iid out again
    again = instruments.upsert(conn, XBT, T0).iid
    assert again not in (a, b)
    assert again > b


def test_identical_upsert_is_a_noop(conn: psycopg.Connection) -> None:
    first = instruments.upsert(conn, XBT, T0)
    same = instruments.upsert(conn, XBT.__replace__(symbol="BTC-USD", base="BTC"), T2)
    assert same.outcome == "unchanged"
    assert same.version == first.version
    assert len(instruments.history(conn, first.iid)) == 1


def test_change_closes_previous_version_and_at_answers_point_in_time(
    conn: psycopg.Connection,
) -> None:
    iid = instruments.upsert(conn, XBT, T0).iid
    instruments.upsert(conn, XBT.__replace__(tick_size=to_fixed("0.5")), T1)
    instruments.upsert(conn, XBT.__replace__(tick_size=to_fixed("0.5"), status="delisted"), T2)
    hist = instruments.history(conn, iid)
    assert [(h.valid_from, h.valid_to) for h in hist] == [(T2, None), (T1, T2), (T0, T1)]
    assert instruments.at(conn, iid, T0 - 1) is None
    assert instruments.at(conn, iid, T0).tick_size == 100_000_000  # type: ignore[union-attr]
    assert instruments.at(conn, iid, T1 - 1).tick_size == 100_000_000  # type: ignore[union-attr]
    assert instruments.at(conn, iid, T1).tick_size == 500_000_000  # type: ignore[union-attr]
    assert instruments.at(conn, iid, T2 - 1).status == "open"  # type: ignore[union-attr]
    assert instruments.at(conn, iid, T2).status == "delisted"  # type: ignore[union-attr]
    assert instruments.at(conn, iid).status == "delisted"  # type: ignore[union-attr]
    assert instruments.lookup(conn, "kraken-v2", "XBT/USD", T1 + 1).valid_from == T1  # type: ignore[union-attr]


def test_change_cannot_rewrite_the_past(conn: psycopg.Connection) -> None:
    instruments.upsert(conn, XBT, T1)
    with pytest.raises(HistoryError, match="must take effect after it"):
        instruments.upsert(conn, XBT.__replace__(status="halted"), T0)
    with pytest.raises(HistoryError):
        instruments.upsert(conn, XBT.__replace__(status="halted"), T1)


def test_symbol_rename_keeps_the_iid(conn: psycopg.Connection) -> None:
    iid = instruments.upsert(conn, XBT, T0).iid
    instruments.upsert(conn, XBT.__replace__(symbol="XBT-USD"), T1)
    assert instruments.at(conn, iid, T0).symbol == "BTC-USD"  # type: ignore[union-attr]
    assert instruments.at(conn, iid, T1).symbol == "XBT-USD"  # type: ignore[union-attr]
    assert instruments.find_by_symbol(conn, "btc-usd") == [iid]
    assert instruments.find_by_symbol(conn, "XBT-USD") == [iid]
    assert instruments.find_by_symbol(conn, "xbt/usd") == [iid]  # the venue symbol too


def test_search_by_venue_glob_and_time(conn: psycopg.Connection) -> None:
    x = instruments.upsert(conn, XBT, T0).iid
    e = instruments.upsert(conn, ETH, T1).iid
    b = instruments.upsert(conn, BN, T0).iid
    assert [v.iid for v in instruments.search(conn, ts_ns=T2)] == [x, e, b]
    assert [v.iid for v in instruments.search(conn, ts_ns=T0)] == [x, b]
    assert [v.iid for v in instruments.search(conn, venue="kraken-v2", ts_ns=T2)] == [x, e]
    assert [v.iid for v in instruments.search(conn, symbol="btc-*", ts_ns=T2)] == [x, b]
    assert [v.iid for v in instruments.search(conn, symbol="*/USD", ts_ns=T2)] == [x, e]
    assert [v.iid for v in instruments.search(conn, symbol="?TH-US[DT]", ts_ns=T2)] == [e]
    assert instruments.symbol_map(conn, "kraken-v2", T2) == {
        "XBT/USD": ("BTC-USD", x),
        "ETH/USD": ("ETH-USD", e),
    }


def test_invalid_instruments_are_refused(conn: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        instruments.upsert(conn, XBT.__replace__(kind="stock"), T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a valid normalized symbol"):
        instruments.upsert(conn, XBT.__replace__(symbol="BTC USD"), T0)
    with pytest.raises(ValueError, match=">= 0"):
        instruments.upsert(conn, XBT.__replace__(tick_size=-1), T0)
    assert normalize_symbol(" eth-usd ") == "ETH-USD"


def test_extra_and_expiry_round_trip(conn: psycopg.Connection) -> None:
    fut = Instrument(
        venue="kalshi",
        venue_symbol="KXBTC-25NOV",
        symbol="KXBTC-25NOV",
        kind="binary",
        expiry_ns=1_764_000_000_000_000_000,
        extra={"series": "KXBTC"},
    )
    v = instruments.upsert(conn, fut, T0).version
    assert (v.expiry_ns, v.extra) == (1_764_000_000_000_000_000, {"series": "KXBTC"})
    settled = instruments.upsert(conn, fut.__replace__(settlement="yes", status="settled"), T1)
    assert settled.outcome == "changed"
    assert instruments.at(conn, v.iid, T1).settlement == "yes"  # type: ignore[union-attr]
