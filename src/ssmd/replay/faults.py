"""Fault injection for the replay server: the `--faults` spec and its per-connection plan.

Why positional and seeded: a fault test must be reproducible, so every fault is either
pinned to a stream frame index or drawn from an RNG seeded by the server's seed and the
connection number — the same spec and seed always break the same frames.

Grammar (comma-separated tokens, whitespace ignored)::

    spec     = token *("," token)
    token    = kind "@" where [":" duration] ["#" conn]
    kind     = "disconnect" | "kill" | "drop" | "dup" | "reorder" | "corrupt-checksum" | "stall"
    where    = N          ; a frame index: the fault hits stream frame N (0-based), i.e.
                          ; after N frames went by
             | P          ; a probability 0 < P < 1 (has a "."): each frame, independently
    duration = number ("ms" | "s")   ; stall only (required there)
    conn     = K          ; only the K-th connection (1-based); default: every connection

`disconnect` sends a close frame (1001 going away) and drops the TCP connection; `kill`
drops it without a close frame. Both take an index only.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

KINDS = ("disconnect", "kill", "drop", "dup", "reorder", "corrupt-checksum", "stall")
_INDEX_ONLY = ("disconnect", "kill", "stall")
_TOKEN = re.compile(
    r"^(?P<kind>[a-z-]+)@(?P<where>[0-9.eE+-]+)(?::(?P<dur>[0-9.]+)(?P<unit>ms|s))?(?:#(?P<conn>\d+))?$"
)

__all__ = ["KINDS", "Fault", "FaultPlan", "FaultSpec", "FaultSpecError", "corrupt_checksum"]


class FaultSpecError(ValueError):
    """A bad `--faults` spec; the message names the offending token."""


@dataclass(frozen=True)
class Fault:
    kind: str
    index: int | None = None
    """Stream frame index (0-based) for positional faults."""
    probability: float = 0.0
    """Per-frame probability for random faults (index is None)."""
    seconds: float = 0.0
    """Stall duration."""
    connection: int = 0
    """1-based connection number this fault is limited to; 0 = every connection."""


@dataclass(frozen=True)
class FaultSpec:
    faults: tuple[Fault, ...] = ()
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse a spec; FaultSpecError names the bad token and says what was expected."""
        if not text.strip():
            return cls()
        faults = []
        for raw in text.split(","):
            token = "".join(raw.split())
            if not token:
                raise FaultSpecError(f"empty fault token in {text!r} (a stray comma?)")
            faults.append(_parse_token(token))
        return cls(tuple(faults), text.strip())

    def __bool__(self) -> bool:
        return bool(self.faults)

    def for_connection(self, conn: int, seed: int) -> FaultPlan:
        return FaultPlan(
            [f for f in self.faults if f.connection in (0, conn)], seed * 1_000_003 + conn
        )


def _parse_token(token: str) -> Fault:
    m = _TOKEN.match(token)
    if m is None:
        kind = token.partition("@")[0]
        if kind not in KINDS:
            raise FaultSpecError(f"fault token {token!r}: unknown kind {kind!r}; known: "
                                 f"{', '.join(KINDS)}")  # fmt: skip
        raise FaultSpecError(
            f"fault token {token!r}: expected KIND@N or KIND@P (0<P<1), optional :DURATION "
            f"(stall, e.g. 5s or 250ms) and #CONN"
        )
    kind, where = m["kind"], m["where"]
    if kind not in KINDS:
        raise FaultSpecError(f"fault token {token!r}: unknown kind {kind!r}; known: "
                             f"{', '.join(KINDS)}")  # fmt: skip
    conn = int(m["conn"]) if m["conn"] else 0
    if m["conn"] and conn < 1:
        raise FaultSpecError(f"fault token {token!r}: connection numbers start at 1")
    seconds = 0.0
    if m["dur"] is not None:
        if kind != "stall":
            raise FaultSpecError(f"fault token {token!r}: only stall takes a duration")
        try:
            seconds = float(m["dur"]) / (1000 if m["unit"] == "ms" else 1)
        except ValueError:
            raise FaultSpecError(f"fault token {token!r}: bad duration {m['dur']!r}") from None
    elif kind == "stall":
        raise FaultSpecError(f"fault token {token!r}: stall needs a duration, e.g. stall@2000:5s")
    if where.isdigit():
        return Fault(kind, index=int(where), seconds=seconds, connection=conn)
    try:
        p = float(where)
    except ValueError:
        raise FaultSpecError(f"fault token {token!r}: {where!r} is neither a frame index "
                             "nor a probability") from None  # fmt: skip
    if kind in _INDEX_ONLY:
        raise FaultSpecError(f"fault token {token!r}: {kind} takes a frame index, not {where!r}")
    if not 0.0 < p < 1.0:
        raise FaultSpecError(f"fault token {token!r}: probability must be in (0, 1), not {where}")
    return Fault(kind, probability=p, connection=conn)


_CHECKSUM = re.compile(rb'"checksum":(\d+)|"c":"(\d+)"')


def corrupt_checksum(payload: bytes) -> bytes | None:
    """The frame with its checksum changed (v2 `"checksum":N`, v1 `"c":"N"`); None if it
    carries none."""
    m = _CHECKSUM.search(payload)
    if m is None:
        return None
    group = 1 if m.group(1) is not None else 2
    bad = str((int(m.group(group)) + 1) % 2**32).encode()
    return payload[: m.start(group)] + bad + payload[m.end(group) :]


@dataclass
class Counts:
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    corrupted: int = 0
    stalls: int = 0


@dataclass
class FaultPlan:
    """The faults of one connection, applied frame by frame in stream order."""

    faults: list[Fault]
    seed: int
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.at: dict[int, list[Fault]] = {}
        for f in self.faults:
            if f.index is not None:
                self.at.setdefault(f.index, []).append(f)
        self.random = [f for f in self.faults if f.index is None]
        self.pending_corrupt = 0
        self._held: bytes | None = None

    def __bool__(self) -> bool:
        return bool(self.faults)

    def control(self, index: int) -> tuple[str, float] | None:
        """What to do *before* stream frame `index`: ('disconnect' | 'kill' | 'stall', seconds)."""
        for f in self.at.get(index, ()):
            if f.kind in ("disconnect", "kill"):
                return (f.kind, 0.0)
        for f in self.at.get(index, ()):
            if f.kind == "stall":
                self.counts.stalls += 1
                return ("stall", f.seconds)
        return None

    def apply(self, index: int, payload: bytes, out: list[bytes]) -> None:
        """Append what goes on the wire for stream frame `index` to `out`."""
        drop = dup = reorder = corrupt = False
        for f in self.at.get(index, ()):
            if f.kind == "drop":
                drop = True
            elif f.kind == "dup":
                dup = True
            elif f.kind == "reorder":
                reorder = True
            elif f.kind == "corrupt-checksum":
                self.pending_corrupt += 1
        rng = self.rng
        for f in self.random:
            if rng.random() < f.probability:
                if f.kind == "drop":
                    drop = True
                elif f.kind == "dup":
                    dup = True
                elif f.kind == "reorder":
                    reorder = True
                else:
                    corrupt = True
        if self.pending_corrupt or corrupt:
            bad = corrupt_checksum(payload)
            if bad is not None:
                payload = bad
                self.counts.corrupted += 1
                if not corrupt:
                    self.pending_corrupt -= 1
        if drop:
            self.counts.dropped += 1
            return
        if reorder and self._held is None:
            self._held = payload
            self.counts.reordered += 1
            return
        out.append(payload)
        if dup:
            out.append(payload)
            self.counts.duplicated += 1
        self._flush(out)

    def _flush(self, out: list[bytes]) -> None:
        """A held (reordered) frame goes out right after the frame that overtook it."""
        if self._held is not None:
            out.append(self._held)
            self._held = None

    def finish(self, out: list[bytes]) -> None:
        self._flush(out)
