"""The incremental v1 checksum (top-10 tokens spliced per update) against a from-scratch
model of the venue, on seeded random streams that stress what the recordings rarely do:
depth-10 windows (evictions inside the top 10), deletes at the top, levels whose wire
strings are off the pair's precision, prices beyond int64 nanos."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from zlib import crc32

import pytest

from ssmd.model.records import Book, Gap
from ssmd.venues.kraken_v1 import KrakenV1Normalizer

INT64_MAX = 2**63 - 1


def _token(price: str, qty: str) -> str:
    return price.replace(".", "").lstrip("0") + qty.replace(".", "").lstrip("0")


class _Venue:
    """What Kraken keeps: wire strings per price, the subscribed depth, top-10 CRC32."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.sides: dict[str, dict[Decimal, tuple[str, str]]] = {"a": {}, "b": {}}

    def ordered(self, side: str) -> list[Decimal]:
        return sorted(self.sides[side], reverse=side == "b")

    def apply(self, side: str, price: str, qty: str) -> None:
        levels = self.sides[side]
        if Decimal(qty) == 0:
            levels.pop(Decimal(price), None)
            return
        levels[Decimal(price)] = (price, qty)
        for px in self.ordered(side)[self.depth :]:
            del levels[px]

    def checksum(self) -> int:
        text = "".join(
            _token(*self.sides[side][px]) for side in "ab" for px in self.ordered(side)[:10]
        )
        return crc32(text.encode())


def _fmt(value: int, decimals: int) -> str:
    return f"{Decimal(value).scaleb(-decimals):.{decimals}f}"


def _stream(seed: int, depth: int, frames: int, odd: bool = True) -> list[str]:
    """A venue stream: a snapshot (with an ask beyond int64 nanos) then updates with
    checksums; `odd`: some levels' wire strings off the pair's precision."""
    rnd = random.Random(seed)
    venue = _Venue(depth)
    mid = 50_000

    def level(side: str) -> tuple[str, str]:
        off = rnd.choice([0, 1, 2, 3, 5, 8, 13, 30]) + rnd.randint(0, 3)
        ticks = mid + off if side == "a" else mid - 1 - off
        price = _fmt(ticks, 2)
        if odd and rnd.random() < 0.05:  # off-precision wire string, same value
            price = _fmt(ticks, 2).rstrip("0").rstrip(".") if ticks % 100 else str(ticks // 100)
        qty = "0.00000000" if rnd.random() < 0.3 else _fmt(rnd.randint(1, 10**9), 8)
        if odd and rnd.random() < 0.03:
            qty = qty[:-3]  # off-precision quantity
        return price, qty

    rows = {s: [level(s) for _ in range(16)] for s in "ab"}
    for side, levels in rows.items():
        for price, qty in levels:
            if Decimal(qty):
                venue.apply(side, price, qty)
    t0 = "1618678000.000001"  # Kraken's seconds.micros
    snap_a = [[*venue.sides["a"][p], t0] for p in venue.ordered("a")]
    snap_b = [[*venue.sides["b"][p], t0] for p in venue.ordered("b")]
    snap_a.append(["99999999997.00", "1.00000000", t0])  # beyond int64 nanos
    venue.apply("a", "99999999997.00", "1.00000000")
    name = f"book-{depth}"
    out = [json.dumps([1, {"as": snap_a, "bs": snap_b}, name, "XBT/USD"])]
    for i in range(frames):
        bodies = []
        for side in rnd.sample("ab", rnd.choice([1, 1, 1, 2])):
            levels = [level(side) for _ in range(rnd.choice([1, 1, 1, 2, 3]))]
            for price, qty in levels:
                venue.apply(side, price, qty)
            stamp = f"{1618678001 + i}.{i * 7919 % 10**6:06d}"
            bodies.append({side: [[p, q, stamp] for p, q in levels]})
        bodies[-1]["c"] = str(venue.checksum())
        out.append(json.dumps([1, *bodies, name, "XBT/USD"]))
    return out


@pytest.mark.parametrize(("seed", "depth"), [(1, 10), (2, 10), (3, 25), (4, 1000)])
def test_incremental_checksum_matches_a_from_scratch_venue(seed: int, depth: int) -> None:
    n = KrakenV1Normalizer()
    frames = _stream(seed, depth, 1500)
    records = [r for i, f in enumerate(frames) for r in n.on_frame(f, i + 1)]
    assert not [r for r in records if isinstance(r, Gap)]
    assert n.stats.checksums_verified == len(frames) - 1
    books = [r for r in records if isinstance(r, Book)]
    assert len(books) == len(frames)
    assert all(px <= INT64_MAX for b in books for px, _ in b.asks + b.bids)
    state = n.books["XBT/USD"]
    assert all(len(side) <= depth for side in state.book.snapshot())


def test_a_wrong_level_is_caught() -> None:
    frames = _stream(5, 10, 300)
    msg = json.loads(frames[151])
    side = "a" if "a" in msg[1] else "b"
    msg[1][side][0][1] = "7.77777777"
    frames[151] = json.dumps(msg)
    n = KrakenV1Normalizer()
    gaps = [r for i, f in enumerate(frames) for r in n.on_frame(f, i + 1) if isinstance(r, Gap)]
    assert gaps and gaps[0].reason == "checksum" and n.stats.checksums_failed == 1


def test_levels_beyond_int64_inside_the_top_10() -> None:
    """A thin side whose top 10 holds prices beyond int64 nanos: kept in the book and in
    the checksum, never published."""
    venue = _Venue(10)
    snap = {"as": [["100.00", "1.00000000", "1.0"], ["99999999997.00", "2.00000000", "1.0"]],
            "bs": [["99.00", "3.00000000", "1.0"]]}  # fmt: skip
    for side, rows in (("a", snap["as"]), ("b", snap["bs"])):
        for price, qty, _ in rows:
            venue.apply(side, price, qty)
    frames = [json.dumps([1, snap, "book-10", "XBT/USD"])]
    for price, qty in [("99999999998.00", "4.00000000"), ("100.00", "0.00000000"),
                       ("99999999997.00", "5.00000000"), ("101.00", "6.00000000")]:  # fmt: skip
        venue.apply("a", price, qty)
        body = {"a": [[price, qty, "2.0"]], "c": str(venue.checksum())}
        frames.append(json.dumps([1, body, "book-10", "XBT/USD"]))
    n = KrakenV1Normalizer()
    records = [r for i, f in enumerate(frames) for r in n.on_frame(f, i + 1)]
    assert n.stats.checksums_verified == 4 and n.stats.checksums_failed == 0
    assert [r.asks for r in records if isinstance(r, Book)] == [
        [(100_000_000_000, 1_000_000_000)], [], [(100_000_000_000, 0)], [],
        [(101_000_000_000, 6_000_000_000)],
    ]  # fmt: skip
