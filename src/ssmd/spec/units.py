"""Durations and byte sizes as people write them ("7d", "10GiB") and as code keeps them (ints).

Durations are integer nanoseconds (DESIGN §1.5: explicit time, integer ns); sizes are
integer bytes. `format_*` gives the shortest exact spelling, so parse(format(n)) == n.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

NS = 1
US = 1_000
MS = 1_000_000
S = 1_000_000_000
M = 60 * S
H = 60 * M
D = 24 * H
W = 7 * D

DURATION_UNITS: dict[str, int] = {
    "w": W,
    "d": D,
    "h": H,
    "m": M,
    "s": S,
    "ms": MS,
    "us": US,
    "µs": US,
    "ns": NS,
}
_FORMAT_DURATION = (("d", D), ("h", H), ("m", M), ("s", S), ("ms", MS), ("us", US), ("ns", NS))
_DURATION_PART = re.compile(r"(\d+)(ns|us|µs|ms|s|m|h|d|w)")
DURATION_PATTERN = r"^(0|forever|((\d+)(ns|us|µs|ms|s|m|h|d|w))+)$"

SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "PB": 10**15,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
    "PiB": 2**50,
}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$")
SIZE_PATTERN = r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|PB|KiB|MiB|GiB|TiB|PiB)?$"


class UnitError(ValueError):
    """A duration or size that does not parse; `hint` says what would."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def parse_duration(text: str) -> int:
    """'1h30m' -> nanoseconds. '0' is zero; parts add up ('1d12h')."""
    s = text.strip()
    if s == "0":
        return 0
    if not s:
        raise UnitError("empty duration", 'write a number and a unit, e.g. "30s", "7d"')
    total, pos = 0, 0
    for match in _DURATION_PART.finditer(s):
        if match.start() != pos:
            break
        total += int(match.group(1)) * DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s) or pos == 0:
        raise UnitError(
            f"invalid duration {text!r}",
            'use a number and a unit (ns, us, ms, s, m, h, d, w), e.g. "90s", "1h30m", "7d"',
        )
    return total


def format_duration(ns: int) -> str:
    """Shortest exact spelling, largest units first: 5400e9 -> '1h30m'."""
    if ns < 0:
        raise ValueError("negative duration")
    if ns == 0:
        return "0s"
    parts = []
    for unit, size in _FORMAT_DURATION:
        count, ns = divmod(ns, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_size(text: str) -> int:
    """'10GiB' -> bytes. Binary (KiB) and decimal (KB) units; a bare number is bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise UnitError(f"invalid size {text!r}", 'use a number and a unit, e.g. "512MiB", "10GB"')
    number, unit = match.groups()
    if unit and unit not in SIZE_UNITS:
        close = {u.lower(): u for u in SIZE_UNITS}.get(unit.lower())
        if close is None and unit.upper() in ("K", "M", "G", "T", "P"):
            close = unit.upper() + "iB"
        hint = f"did you mean {close!r}?" if close else ""
        raise UnitError(
            f"unknown size unit {unit!r}",
            hint or "units: B, KB, MB, GB, TB, PB (powers of 1000), KiB, MiB, GiB, TiB, PiB (1024)",
        )
    try:
        value = Decimal(number) * SIZE_UNITS[unit or "B"]
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise UnitError(f"invalid size {text!r}") from None
    if value != value.to_integral_value():
        raise UnitError(f"size {text!r} is not a whole number of bytes", "use a smaller unit")
    return int(value)


def format_size(n: int) -> str:
    """Shortest exact spelling: 10737418240 -> '10GiB', 1500 -> '1500B', 2000 -> '2KB'."""
    if n < 0:
        raise ValueError("negative size")
    best = f"{n}B"
    if n == 0:
        return "0B"
    for unit, size in SIZE_UNITS.items():
        if size > 1 and n % size == 0:
            candidate = f"{n // size}{unit}"
            if len(candidate) < len(best) or (
                len(candidate) == len(best) and unit.endswith("iB") and not best.endswith("iB")
            ):
                best = candidate
    return best
