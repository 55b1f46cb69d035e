"""Sequence-number continuity: a generic tracker and Binance's snapshot/diff stitching.

Pure state machines: they say what to do with the next message; the caller owns the
book and turns "gap" answers into `Gap` records and resync decisions.
"""

from __future__ import annotations

from typing import Literal

SeqVerdict = Literal["ok", "gap", "stale", "first"]
StitchVerdict = Literal["apply", "drop", "stale", "gap", "wait"]

__all__ = ["BinanceStitcher", "SeqTracker", "SeqVerdict", "StitchVerdict"]


class SeqTracker:
    """Each message must carry `last + step` (Kalshi `seq`, Coinbase `sequence`, ...)."""

    __slots__ = ("last", "step")

    def __init__(self, step: int = 1) -> None:
        self.step = step
        self.last: int | None = None

    def reset(self, last: int | None = None) -> None:
        self.last = last

    def check(self, seq: int) -> SeqVerdict:
        """'first' starts the chain; 'gap' moves to `seq`; 'stale' (<= last) leaves it."""
        last = self.last
        if last is None:
            self.last = seq
            return "first"
        if seq == last + self.step:
            self.last = seq
            return "ok"
        if seq <= last:
            return "stale"
        self.last = seq
        return "gap"

    def expected(self) -> int | None:
        return None if self.last is None else self.last + self.step


class BinanceStitcher:
    """Binance spot diff-depth stitching to a REST snapshot's `lastUpdateId`.

    Per Binance's "How to manage a local order book correctly" (spot): drop diffs with
    `u <= lastUpdateId`; the first applied diff must have `U <= lastUpdateId+1 <= u`;
    after that each diff's `U` must be the previous `u` + 1. A diff with `u` at or below
    the book's update id is stale (duplicate or late): ignore it, the book is unaffected.
    """

    __slots__ = ("last_update_id", "snapshot_id")

    def __init__(self) -> None:
        self.snapshot_id: int | None = None
        self.last_update_id: int | None = None
        """Update id the book is at: the snapshot's, then each applied diff's `u`."""

    @property
    def synced(self) -> bool:
        return self.snapshot_id is not None

    def reset(self) -> None:
        """Forget the snapshot: diffs wait for the next one."""
        self.snapshot_id = None
        self.last_update_id = None

    def on_snapshot(self, last_update_id: int) -> None:
        self.snapshot_id = last_update_id
        self.last_update_id = last_update_id

    def check(self, first_id: int, final_id: int) -> StitchVerdict:
        """Verdict for a diff `U`=first_id, `u`=final_id; 'apply' advances the state."""
        last = self.last_update_id
        if last is None:
            return "wait"
        if final_id <= last:
            return "drop" if last == self.snapshot_id else "stale"
        if first_id == last + 1 or (last == self.snapshot_id and first_id <= last + 1):
            self.last_update_id = final_id
            return "apply"
        return "gap"
