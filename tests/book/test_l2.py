"""L2Book behaviour and invariants against a naive dict model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.book.l2 import L2Book

PX = st.integers(min_value=1, max_value=60)
SZ = st.integers(min_value=0, max_value=5)
OPS = st.lists(st.tuples(st.sampled_from(["bid", "ask"]), PX, SZ), max_size=200)


def test_basic_levels_and_order() -> None:
    book = L2Book()
    book.apply_snapshot([(100, 1), (99, 2), (98, 0)], [(101, 3), (103, 1)])
    assert len(book) == 4
    assert book.best_bid() == (100, 1)
    assert book.best_ask() == (101, 3)
    book.apply("ask", 102, 5)
    book.apply("bid", 100, 0)
    book.apply("bid", 42, 0)  # deleting an absent level is a no-op
    assert book.top("ask", 2) == [(101, 3), (102, 5)]
    assert book.top("bid", 5) == [(99, 2)]
    assert book.snapshot() == ([(99, 2)], [(101, 3), (102, 5), (103, 1)])
    assert not book.is_crossed()
    book.apply("bid", 101, 1)
    assert book.is_crossed() and book.is_locked() and not book.is_strictly_crossed()
    book.apply("bid", 102, 1)
    assert book.is_strictly_crossed()
    book.clear()
    assert len(book) == 0 and book.best_bid() is None and book.best_ask() is None


def test_depth_window_drops_worst_and_reports_it() -> None:
    book = L2Book(max_depth=3)
    book.apply_snapshot([(10, 1), (9, 1), (8, 1), (7, 1)], [(11, 1)])
    assert book.top("bid", 10) == [(10, 1), (9, 1), (8, 1)]
    assert book.apply("bid", 11, 2) == 8
    assert book.apply("bid", 5, 2) == 5  # inserted beyond the window: dropped at once
    assert book.apply("bid", 9, 7) is None
    assert book.top("bid", 10) == [(11, 2), (10, 1), (9, 7)]
    assert book.apply("ask", 12, 1) is None


@settings(max_examples=300, deadline=None)
@given(OPS, st.integers(min_value=0, max_value=8))
def test_matches_naive_model(ops: list[tuple[str, int, int]], depth: int) -> None:
    book = L2Book(max_depth=depth)
    model: dict[str, dict[int, int]] = {"bid": {}, "ask": {}}
    for side, px, sz in ops:
        evicted = book.apply(side, px, sz)  # type: ignore[arg-type]
        levels = model[side]
        if sz:
            levels[px] = sz
        else:
            levels.pop(px, None)
        expect_evicted = None
        if depth and len(levels) > depth:
            expect_evicted = min(levels) if side == "bid" else max(levels)
            del levels[expect_evicted]
        assert evicted == expect_evicted
    bids = sorted(model["bid"].items(), reverse=True)
    asks = sorted(model["ask"].items())
    assert book.snapshot() == (bids, asks)
    assert len(book) == len(bids) + len(asks)
    assert book.best_bid() == (bids[0] if bids else None)
    assert book.best_ask() == (asks[0] if asks else None)
    assert book.top("bid", 3) == bids[:3]
    crossed = bool(bids and asks and bids[0][0] >= asks[0][0])
    assert book.is_crossed() == crossed
    # a snapshot of the state rebuilds the same book
    again = L2Book(max_depth=depth)
    again.apply_snapshot(bids, asks)
    assert again.snapshot() == book.snapshot()


@settings(max_examples=200, deadline=None)
@given(OPS, st.integers(min_value=0, max_value=6))
def test_update_is_apply_plus_where(ops: list[tuple[str, int, int]], depth: int) -> None:
    """`update` changes the book exactly as `apply` does and says at which rank."""
    ranked, plain = L2Book(depth), L2Book(depth)
    for side, px, sz in ops:
        before = [p for p, _ in ranked.top(side, 10_000)]  # type: ignore[arg-type]
        rank, evicted = ranked.update(side, px, sz)  # type: ignore[arg-type]
        assert evicted == plain.apply(side, px, sz)  # type: ignore[arg-type]
        assert ranked.snapshot() == plain.snapshot()
        after = [p for p, _ in ranked.top(side, 10_000)]  # type: ignore[arg-type]
        if sz == 0:
            assert rank == (before.index(px) if px in before else -1)
        else:
            assert rank == (after.index(px) if px in after else depth)
        for r, level in enumerate(ranked.top(side, 10_000)):  # type: ignore[arg-type]
            assert ranked.level_at(side, r) == level  # type: ignore[arg-type]
        assert ranked.level_at(side, len(after)) is None  # type: ignore[arg-type]


def test_side_index_is_live_across_snapshots_and_clears() -> None:
    book = L2Book()
    bids, bid_keys = book.side_index("bid")
    asks, ask_keys = book.side_index("ask")
    book.apply_snapshot([(9, 1), (10, 2), (9, 3)], [(12, 1), (11, 0)])
    assert bids == {9: 3, 10: 2} and bid_keys == [-10, -9]  # later duplicate wins
    assert asks == {12: 1} and ask_keys == [12]
    book.clear()
    assert book.side_index("bid") == ({}, []) and bids == {} and bid_keys == []
