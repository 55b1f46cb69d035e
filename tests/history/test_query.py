"""History reads: book-at against an independent replay, bars by hand, the seamless
archive + JetStream boundary (no gap, no duplicate), and bad CLI arguments (exit 1)."""

from __future__ import annotations

import asyncio
import collections
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from tests.bus.helpers import read_stream
from tests.history.conftest import REPO, STREAM, Captured, capture, dev

from ssmd.book.l2 import L2Book
from ssmd.bus.message import record_message
from ssmd.bus.msgid import seq_scope
from ssmd.capture.derive import derive_journal
from ssmd.history.layout import HOUR_NS, Partition, hour_key
from ssmd.history.query import History, QueryError
from ssmd.history.reprocess import reprocess
from ssmd.history.schema import from_table, to_table
from ssmd.history.writer import parquet_bytes, sort_table
from ssmd.model.records import Book, Gap, Trade
from ssmd.storage import ObjectStore

FAR = 2**62 - 2**62 % HOUR_NS
SCALE = 10**9


@pytest.fixture(scope="module")
def archived(captured: Captured, tmp_path_factory) -> tuple[Path, ObjectStore]:
    root = tmp_path_factory.mktemp("archived")
    shutil.copytree(captured.root / "raw", root / "raw")
    store = ObjectStore.local(root / "objects")
    reprocess(dev(root), "sim", 0, FAR, data_dir=root, store=store)
    return root, store


def test_book_at_matches_an_independent_replay(archived):
    root, store = archived
    h = History(store, "dev", "sim")
    records = list(derive_journal(root, "dev", "sim", "sim"))
    books = [r for r in records if isinstance(r, Book) and r.symbol == "ETH-USD"]
    assert books[0].snapshot and len(books) > 100
    last_gap = max(r.ts_recv for r in records if isinstance(r, Gap) and r.symbol == "ETH-USD")
    # the independent replay: L2Book, journal order, book state after each record
    book = L2Book()
    checked = 0
    for i, b in enumerate(books):
        if b.snapshot:
            book.apply_snapshot(b.bids, b.asks)
        else:
            for px, sz in b.bids:
                book.apply("bid", px, sz)
            for px, sz in b.asks:
                book.apply("ask", px, sz)
        nxt = books[i + 1].ts_recv if i + 1 < len(books) else None
        if i % 97 == 0 and nxt != b.ts_recv and b.ts_recv < last_gap:
            got = h.book_at("ETH-USD", b.ts_recv, by="ts_recv")
            bids, asks = book.snapshot()
            assert got.known, got.reason
            assert (got.bids, got.asks) == (list(bids), list(asks)), f"at record {i}"
            checked += 1
    assert checked >= 3
    # after the disconnect gap (the capture's stop) the book is unknown, not stale
    after = h.book_at("ETH-USD", last_gap + 1, by="ts_recv")
    assert not after.known and "disconnect" in after.reason
    before = h.book_at("ETH-USD", books[0].ts_recv - 1, by="ts_recv")
    assert not before.known and "no book snapshot" in before.reason


def _trade(i: int, ts: int, price: str, size: str) -> Trade:
    return Trade(feed="f", venue="sim", symbol="XYZ", ts_event=ts, ts_recv=ts + 5 * SCALE,
                 price=int(float(price) * SCALE), size=int(float(size) * SCALE),
                 side="buy", trade_id=str(i))  # fmt: skip


def test_bars_by_hand(tmp_path):
    t0 = 1_800_000_000 * SCALE - (1_800_000_000 * SCALE) % HOUR_NS
    trades = [
        _trade(1, t0 + 1 * SCALE, "10", "1"),
        _trade(2, t0 + 20 * SCALE, "12", "2"),
        _trade(3, t0 + 20 * SCALE, "9", "1"),  # same ts: archive order decides the close
        _trade(4, t0 + 59 * SCALE, "11", "0.5"),
        _trade(5, t0 + 125 * SCALE, "8", "3"),  # minute 2; minute 1 has no trade
    ]
    store = ObjectStore.local(tmp_path)
    table = sort_table(to_table("trade", trades))
    store.put(Partition(1, "e", "f", "trade", t0).key, parquet_bytes("trade", table, {}))
    store.put(hour_key(1, "e", "f", t0), msgspec.json.encode({"complete": True}))
    bars = History(store, "e", "f").bars("XYZ", t0, t0 + HOUR_NS, 60 * SCALE).to_pylist()
    assert bars == [
        {"ts": t0, "open": 10 * SCALE, "high": 12 * SCALE, "low": 9 * SCALE,
         "close": 11 * SCALE, "volume": int(4.5 * SCALE), "trades": 4},
        {"ts": t0 + 120 * SCALE, "open": 8 * SCALE, "high": 8 * SCALE, "low": 8 * SCALE,
         "close": 8 * SCALE, "volume": 3 * SCALE, "trades": 1},
    ]  # fmt: skip
    # by ts_recv (+5 s): the trade at 59 s moves to minute 1
    by_recv = History(store, "e", "f").bars("XYZ", t0, t0 + HOUR_NS, 60 * SCALE, "ts_recv")
    assert [b["trades"] for b in by_recv.to_pylist()] == [3, 1, 1]
    with pytest.raises(QueryError):
        History(store, "e", "f").bars("XYZ", t0, t0, 60 * SCALE)


def test_archive_and_stream_meet_without_gap_or_duplicate(nats_url: str, tmp_path: Path):
    """Reprocess while the connector runs (the hour and its segment are still open: the
    marker says incomplete), let it capture more, then read [t0, now): archive + stream,
    deduplicated by Msg-Id."""
    store = ObjectStore.local(tmp_path / "objects")
    reports = []

    def midway() -> None:  # the connector is still writing its segment meanwhile
        reports.append(reprocess(dev(tmp_path), "sim", 0, FAR, data_dir=tmp_path, store=store))

    capture(tmp_path, nats_url, 2.0, seed=11, during=midway)
    (first,) = reports
    assert first.incomplete_hours and first.open_segments  # the hour is still running
    stream = asyncio.run(read_stream(nats_url, STREAM))
    h = History(store, "dev", "sim", nats_url=nats_url, scope=seq_scope("sim"))
    for kind, symbol in (("trade", "BTC-USD"), ("quote", "ETH-USD"), ("book", "SOL-USD")):
        got = h.records(kind, symbol, 0, FAR, "ts_recv")
        ids = [record_message("dev", r, seq_scope("sim"))[2] for r in from_table(kind, got)]
        prefix = f"sim:{kind}:{symbol}:"
        want = [m for m, _ in stream if m and m.startswith(prefix)]
        assert collections.Counter(ids) == collections.Counter(want)  # no gap, no duplicate
        assert len(ids) == len(set(ids))
        assert h.sources["archive"] > 0 and h.sources["stream"] > 0
        assert h.sources["deduplicated"] > 0  # the overlap was there, and removed
        payloads = {record_message("dev", r, seq_scope("sim"))[1] for r in from_table(kind, got)}
        assert payloads == {p for m, p in stream if m in set(want)}
    # once the hour is complete (as if reprocessed after it ended), the archive alone serves
    reprocess(dev(tmp_path), "sim", 0, FAR, data_dir=tmp_path, store=store, now_ns=FAR)
    h2 = History(store, "dev", "sim", nats_url=nats_url, scope=seq_scope("sim"))
    got = h2.trades("BTC-USD", 0, FAR, "ts_recv")
    assert h2.sources["stream"] == 0
    assert got.num_rows == len([m for m, _ in stream if m and m.startswith("sim:trade:BTC-USD:")])


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ssmd.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trades", "-s", "BTC-USD", "--from", "yesterday", "--to", "0"], "not a time"),
        (["trades", "-s", "BTC-USD", "--from", "10", "--to", "5"], "empty range"),
        (["quotes", "-s", "X", "--from", "0", "--to", "5", "--by", "ts_x"], "--by must be"),
        (["bars", "-s", "X", "--from", "0", "--to", "5", "--interval", "7q"], "--interval"),
        (["export", "-s", "X", "--from", "0", "--to", "5", "--format", "xml", "-o", "x"],
         "--format"),
        (["trades", "-f", "nope", "-s", "X", "--from", "0", "--to", "5"], "no feed"),
    ],
)  # fmt: skip
def test_bad_query_arguments_exit_1_with_a_message(args, message, tmp_path):
    env = tmp_path / "dev.yaml"
    env.write_text((REPO / "environments" / "dev.yaml").read_text())
    done = cli("data", *args, "--env", str(env), "--no-stream", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "error:" in done.stderr and message in done.stderr


def test_cli_reads_the_archive_as_json(archived, tmp_path):
    root, _ = archived
    env = tmp_path / "dev.yaml"
    text = (REPO / "environments" / "dev.yaml").read_text()
    env.write_text(text.replace("data_dir: ./data", f"data_dir: {root}"))
    base = ["--env", str(env), "--no-stream", "--json"]
    done = cli("data", "trades", "-s", "BTC-USD", "--from", "0", "--to", str(FAR), "--by",
               "ts_recv", *base, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = msgspec.json.decode(done.stdout)
    assert doc["count"] > 0 and doc["records"][0]["type"] == "trade"
    assert isinstance(doc["records"][0]["price"], str)  # decimals as strings
    done = cli("data", "catalog", "--env", str(env), "--json", cwd=tmp_path)
    day = msgspec.json.decode(done.stdout)["days"][0]
    assert day["types"]["trade"]["rows"] > 0 and day["gaps"] == 3
    out = tmp_path / "t.csv"
    done = cli("data", "export", "-s", "BTC-USD", "--from", "0", "--to", str(FAR), "--by",
               "ts_recv", "--format", "csv", "-o", str(out), *base, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines()[0].startswith("type,feed,venue,symbol")
