"""Sequence trackers: generic continuity and Binance U/u stitching."""

from __future__ import annotations

from ssmd.book.sequence import BinanceStitcher, SeqTracker


def test_seq_tracker() -> None:
    t = SeqTracker()
    assert [t.check(s) for s in (5, 6, 7, 7, 3, 9, 10)] == [
        "first",
        "ok",
        "ok",
        "stale",
        "stale",
        "gap",
        "ok",
    ]
    assert t.expected() == 11


def test_binance_stitching_rules() -> None:
    s = BinanceStitcher()
    assert s.check(1, 5) == "wait"
    s.on_snapshot(100)
    assert s.check(90, 100) == "drop"  # u <= lastUpdateId
    assert s.check(102, 104) == "gap"  # first diff must straddle 101
    assert s.last_update_id == 100
    assert s.check(95, 101) == "apply"  # U <= 101 <= u
    assert s.check(102, 110) == "apply"
    assert s.check(102, 110) == "stale"  # a duplicate: ignored
    assert s.check(112, 115) == "gap"  # 111 missing
    s.reset()
    assert s.check(116, 120) == "wait" and not s.synced
