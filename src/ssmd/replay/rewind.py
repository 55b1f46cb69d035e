"""A prebuilt tape's per-symbol state at any chunk boundary, for late (re)subscribers.

Why: prebuilt chunks are shared bytes, so a connection still playing them has no tape of
its own whose books stand where it is; yet a subscribe or a resync resubscribe must be
answered with the book *there* (its checksum must agree with the next update), not with
the tape's start. A symbol's evolution depends only on its own steps (market.py: one RNG
per symbol), so while prebuilding this keeps each symbol's step count at every chunk
boundary and a copy of its state every `every` steps of that symbol; its state at a
boundary is the nearest copy advanced by fewer than `every` steps of that symbol alone.
Memory: one copy per `every` steps in all (~5.5 kB each; 16 MB for a million frames);
a snapshot costs a copy (~30 µs) and fewer than `every` steps (~1.5 ms on average).
"""

from __future__ import annotations

from array import array

from ssmd.replay.synth import Tape

__all__ = ["Rewind"]


class Rewind:
    """Record while prebuilding (`take`), then ask `at(chunk, symbol, index)`."""

    def __init__(self, tape: Tape, every: int = 256) -> None:
        self.every = every
        self.scratch = tape.copy()
        """Replays one symbol at a time; its other symbols' state is never read."""
        n = len(tape.books)
        self.steps = array("I", [0] * n)
        """Steps per symbol so far."""
        self.bounds: list[array[int]] = [array("I", self.steps)]
        """Steps per symbol before each chunk (and after the last)."""
        self.saved = [[tape.copy_state(tape.symbol_state(i))] for i in range(n)]
        """Per symbol: its state after 0, every, 2*every … of its steps."""
        self._tape = tape

    def _on_step(self, i: int) -> None:
        steps = self.steps[i] + 1
        self.steps[i] = steps
        if steps % self.every == 0:
            tape = self._tape
            self.saved[i].append(tape.copy_state(tape.symbol_state(i)))

    def take(self, tape: Tape, n: int) -> tuple[list[bytes], list[int]]:
        """`tape.take(n)`, recording (the tape given at construction)."""
        assert tape is self._tape
        chunk = tape.take(n, self._on_step)
        self.bounds.append(array("I", self.steps))
        return chunk

    def at(self, chunk: int, i: int, index: int) -> Tape:
        """A tape whose symbol `i` stands where it stood before `chunk` (frame `index`):
        read it (`book_snapshot(i)`, `ticker(i, …)`, `depth_snapshot(i)`) before the next
        call, which reuses it."""
        steps = self.bounds[chunk][i]
        whole, rest = divmod(steps, self.every)
        tape = self.scratch
        tape.set_symbol_state(i, tape.copy_state(self.saved[i][whole]))
        out: list[bytes] = []
        tags: list[int] = []
        for _ in range(rest):
            tape._step(i, out, tags)
            out.clear()
            tags.clear()
        tape.index = index
        return tape
