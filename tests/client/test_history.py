# ruff: noqa: F811  (the `gateway` fixture is imported, then used as a parameter)
"""History through the client against the real gateway app: pagination completeness,
typed records equal to what was archived, DataFrames with exact decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.rest_app import D1, D2, D3, Gw, gateway, records  # noqa: F401 (fixture)
from ssmd.client import Bar, Records
from ssmd.model.fixed import from_fixed, to_fixed
from ssmd.model.records import Book, Gap, Quote, Trade

from .harness import client_for


def archived(kind: type, symbol: str, lo: int = D1, hi: int = D3) -> list:
    return sorted(
        (r for r in records() if isinstance(r, kind) and r.symbol == symbol
         and lo <= r.ts_event < hi),
        key=lambda r: r.ts_event,
    )  # fmt: skip


def test_trades_follow_every_page_to_the_end(gateway: Gw) -> None:
    calls: list[str] = []
    gateway.client.event_hooks["request"].append(lambda req: calls.append(str(req.url)))
    c = client_for(gateway.client, gateway.tokens["ops"], page_size=50)
    got = c.trades("sim", "BTC-USD", D1, D3)
    want = archived(Trade, "BTC-USD")
    assert len(want) == 288
    assert isinstance(got, Records) and list(got) == want  # typed, equal, no dup, no skip
    assert sum("/v1/trades" in u for u in calls) == 6  # 288 rows / 50 per page
    assert got.clipped is False


def test_limit_cuts_across_pages_and_times_in_any_form(gateway: Gw) -> None:
    c = client_for(gateway.client, gateway.tokens["ops"], page_size=50)
    got = c.trades("sim", "ETH-USD", "2026-03-01T00:00:00Z", D3, limit=120)
    assert list(got) == archived(Trade, "ETH-USD")[:120]
    from datetime import UTC, date, datetime

    one_day = c.quotes("sim", "BTC-USD", date(2026, 3, 1), datetime(2026, 3, 2, tzinfo=UTC))
    assert list(one_day) == archived(Quote, "BTC-USD", D1, D2)
    assert all(isinstance(q, Quote) for q in one_day)


def test_records_of_any_type_book_at_and_bars(gateway: Gw) -> None:
    c = client_for(gateway.client, gateway.tokens["ops"], page_size=7)
    gaps = c.records("gap", "sim", "BTC-USD", D1, D3, by="ts_recv")
    assert list(gaps) == [r for r in records() if isinstance(r, Gap) and r.symbol == "BTC-USD"]
    books = c.records("book", "sim", "ETH-USD", D1, D2)
    assert list(books) == archived(Book, "ETH-USD", D1, D2) and len(books) == 48

    book = c.book_at("sim", "BTC-USD", D1 + 2 * 60 * 10**9)
    assert book.known
    assert book.bids == [(to_fixed(59999), to_fixed(1)), (to_fixed(59998), to_fixed("0.5"))]
    assert book.asks == [(to_fixed(60001), to_fixed(2))]

    bars = c.bars("sim", "BTC-USD", D1, D2, "1h")
    assert bars.interval_ns == 3600 * 10**9 and len(bars) == 24
    for bar in bars:
        ts = [t for t in archived(Trade, "BTC-USD") if bar.ts <= t.ts_event < bar.ts + 3600 * 10**9]
        px = [t.price for t in ts]
        assert bar == Bar(ts=bar.ts, open=px[0], high=max(px), low=min(px), close=px[-1],
                          volume=sum(t.size for t in ts), trades=len(ts))  # fmt: skip
    assert list(c.bars("sim", "BTC-USD", D1, D2, "1h", limit=5)) == list(bars)[:5]


def test_reference_endpoints(gateway: Gw) -> None:
    c = client_for(gateway.client, gateway.tokens["ops"])
    assert c.health()["status"] == "ok"
    assert [f["name"] for f in c.feeds()] == ["sim"]
    assert isinstance(c.instruments(at=D1), list)
    cat = c.catalog()
    assert "sim" in str(cat)


def test_clipped_to_entitlements(gateway: Gw) -> None:
    c = client_for(gateway.client, gateway.tokens["alice"], page_size=100)
    got = c.trades("sim", "BTC-USD", D1, D3)
    assert got.clipped is True and list(got) == archived(Trade, "BTC-USD", D1, D2)


def test_pandas_values_equal_the_records_exactly(gateway: Gw) -> None:
    c = client_for(gateway.client, gateway.tokens["ops"], page_size=100)
    trades = c.trades("sim", "BTC-USD", D1, D2)
    df = trades.to_pandas()
    assert len(df) == len(trades) == 144
    assert list(df["price"]) == [Decimal(from_fixed(t.price)) for t in trades]
    assert all(type(v) is Decimal for v in df["price"])
    assert list(df["size"]) == [Decimal("0.125")] * 144
    assert str(df["ts_event"].dtype) == "datetime64[ns, UTC]"
    assert list(df["ts_event"].astype("int64")) == [t.ts_event for t in trades]
    assert list(df["trade_id"]) == [t.trade_id for t in trades]
    fixed = trades.to_pandas(decimals="fixed", times="ns")
    assert list(fixed["price"]) == [t.price for t in trades]
    assert list(fixed["ts_recv"]) == [t.ts_recv for t in trades]
    floats = trades.to_pandas(decimals="float")
    assert str(floats["price"].dtype) == "float64"

    books = c.records("book", "sim", "BTC-USD", D1, D2).to_pandas()
    assert books["bids"][0] == [(Decimal("59999"), Decimal("1"))]
    bars = c.bars("sim", "BTC-USD", D1, D2, "6h").to_pandas()
    assert list(bars["volume"]) == [Decimal("4.5")] * 4  # 36 trades of 0.125 per bar


def test_polars_values_equal_the_records_exactly(gateway: Gw) -> None:
    pl = pytest.importorskip("polars")
    c = client_for(gateway.client, gateway.tokens["ops"], page_size=1000)
    quotes = c.quotes("sim", "ETH-USD", D1, D3)
    df = quotes.to_polars()
    assert df.height == len(quotes) == 288
    assert df.schema["bid_px"] == pl.Decimal(38, 9)
    assert df["bid_px"].to_list() == [Decimal(from_fixed(q.bid_px)) for q in quotes]
    assert df["ask_sz"].to_list() == [Decimal(2)] * 288
    assert df["ts_recv"].dtype == pl.Datetime("ns", "UTC")
    assert df["ts_recv"].cast(pl.Int64).to_list() == [q.ts_recv for q in quotes]
    fixed = quotes.to_polars(decimals="fixed", times="ns")
    assert fixed["ask_px"].to_list() == [q.ask_px for q in quotes]
    books = c.records("book", "sim", "ETH-USD", D1, D2).to_polars()
    assert books["asks"][0].to_list() == [{"price": Decimal(3001), "size": Decimal(2)}]
    bars = c.bars("sim", "ETH-USD", D1, D2, "1d").to_polars()
    assert bars["trades"].to_list() == [144]
