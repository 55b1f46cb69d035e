"""Which shard and which connection captures an instrument (pure).

Rendezvous (highest-random-weight) hashing: every shard scores every symbol with a
stable hash of `f"{feed}:{symbol}:{shard}"` and the highest score wins. No table is
stored; any process computes the same answer from the definition alone, and going from
N to N+1 shards moves only the symbols the new shard now wins (about 1/(N+1) of them),
all of them *to* the new shard — every other assignment stays put, so no other shard's
streams are disturbed. The feed name is part of the key so that shard 0 of two feeds
does not get the same symbol set (load spreads across machines).

blake2b, not `hash()`: Python's string hash is salted per process.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence


def score(feed: str, symbol: str, shard: int) -> int:
    """The weight of `shard` for `symbol` (64-bit, stable across processes and versions)."""
    key = f"{feed}:{symbol}:{shard}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def shard_of(symbol: str, n: int, *, feed: str) -> int:
    """The shard (0..n-1) that captures `symbol` of `feed` when the feed has `n` shards."""
    if n < 1:
        raise ValueError(f"shard count must be >= 1, not {n}")
    # max() keeps the first maximum, so a (practically impossible) tie goes to the lower shard.
    return max(range(n), key=lambda shard: score(feed, symbol, shard))


def assign(symbols: Iterable[str], n: int, *, feed: str) -> dict[int, list[str]]:
    """Every shard 0..n-1 (even empty ones) -> its symbols, in input order, duplicates dropped."""
    out: dict[int, list[str]] = {shard: [] for shard in range(n)}
    for symbol in dict.fromkeys(symbols):
        out[shard_of(symbol, n, feed=feed)].append(symbol)
    return out


def split(symbols: Sequence[str], per_connection: int) -> list[list[str]]:
    """A shard's symbols split into the fewest connections of at most `per_connection`,
    balanced (250 at 100 -> 84/83/83, not 100/100/50) so each keeps headroom for
    instruments added by hot reload. Sorted, so the split does not depend on input order."""
    if per_connection < 1:
        raise ValueError(f"per_connection must be >= 1, not {per_connection}")
    ordered = sorted(dict.fromkeys(symbols))
    if not ordered:
        return []
    count = math.ceil(len(ordered) / per_connection)
    size, extra = divmod(len(ordered), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(ordered[start:end])
        start = end
    return out


def place(
    connections: Sequence[Sequence[str]],
    added: Iterable[str],
    removed: Iterable[str],
    per_connection: int,
) -> list[list[str]]:
    """Hot reload without disturbing anyone: drop `removed`, then put each new symbol in
    the least-loaded connection with room (a new connection when all are full). Symbols
    already placed never move, so their streams continue untouched. Empty connections are
    kept (the caller may close them) so connection indexes stay stable."""
    if per_connection < 1:
        raise ValueError(f"per_connection must be >= 1, not {per_connection}")
    gone = set(removed)
    out = [[s for s in conn if s not in gone] for conn in connections]
    present = {s for conn in out for s in conn}
    for symbol in dict.fromkeys(added):
        if symbol in present or symbol in gone:
            continue
        room = [i for i, conn in enumerate(out) if len(conn) < per_connection]
        if room:
            target = min(room, key=lambda i: (len(out[i]), i))
            out[target].append(symbol)
        else:
            out.append([symbol])
        present.add(symbol)
    return out


def plan(
    symbols: Iterable[str], n: int, per_connection: int, *, feed: str
) -> dict[int, list[list[str]]]:
    """shard -> connections -> symbols: what `ssmd shard plan` prints and each connector
    process takes its own slice of."""
    return {
        shard: split(syms, per_connection) for shard, syms in assign(symbols, n, feed=feed).items()
    }


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' (0-based I) -> (I, N); ValueError says the form."""
    try:
        left, right = text.split("/")
        index, count = int(left), int(right)
    except ValueError:
        raise ValueError(f"shard must look like I/N (e.g. 0/4), not {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {text!r}: need 0 <= I < N and N >= 1")
    return index, count
