"""Exact decimals as int64 fixed-point at scale 1e-9 (DESIGN.md §5).

Prices and sizes never touch a binary float. Venues send decimal strings (or JSON
numbers); we keep them as integers counting nano-units, and print them back as
canonical decimal strings: no exponent, no trailing zeros, no leading '+', "0" for zero.
This module is the one place those conversions live.
"""

from __future__ import annotations

from decimal import Decimal

DECIMALS = 9
SCALE = 10**DECIMALS
INT64_MAX = 2**63 - 1
_PAD = tuple(10 ** (DECIMALS - n) for n in range(DECIMALS + 1))


def to_fixed(value: str | int | Decimal) -> int:
    """Parse an exact decimal into fixed-point; raise ValueError naming what is wrong.

    Accepts '123', '-0.5', '1.25000', '1e-3', ints and Decimals. Rejects anything that
    is not finite, has more than nine decimals, or does not fit in int64.
    """
    if value.__class__ is str:  # the usual '5541.30000': two int() and a multiply
        whole, _, frac = value.partition(".")
        if len(frac) <= DECIMALS and whole.isdigit() and frac.isdigit() and value.isascii():
            out = int(whole) * SCALE + int(frac) * _PAD[len(frac)]
            if out <= INT64_MAX:
                return out
    if isinstance(value, bool):
        raise ValueError(f"not a decimal number: {value!r}")
    if isinstance(value, int):
        out = value * SCALE
    elif isinstance(value, str):
        out = _parse_str(value)
    elif isinstance(value, Decimal):
        out = _parse_decimal(value)
    else:
        raise ValueError(f"not a decimal number: {value!r} ({type(value).__name__})")
    if not -INT64_MAX <= out <= INT64_MAX:
        raise ValueError(f"decimal out of int64 fixed-point range: {value!r}")
    return out


def _parse_str(text: str) -> int:
    # Fast path for the plain forms venues send ('5541.30000', '-3', '.5').
    sign = 1
    body = text
    if body[:1] == "-":
        sign, body = -1, body[1:]
    whole, dot, frac = body.partition(".")
    if (whole.isdigit() or (dot and whole == "")) and (frac.isdigit() or frac == ""):
        if not whole and not frac:
            raise ValueError(f"not a decimal number: {text!r}")
        if whole.isascii() and frac.isascii():
            if len(frac) > DECIMALS:
                stripped = frac.rstrip("0")
                if len(stripped) > DECIMALS:
                    raise ValueError(f"more than {DECIMALS} decimals: {text!r}")
                frac = stripped
            return sign * (int(whole or "0") * SCALE + int(frac or "0") * _PAD[len(frac)])
    try:
        parsed = Decimal(text.strip())
    except ArithmeticError:
        raise ValueError(f"not a decimal number: {text!r}") from None
    return _parse_decimal(parsed, text)


def _parse_decimal(value: Decimal, shown: object = None) -> int:
    shown = value if shown is None else shown
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {shown!r}")
    scaled = value.scaleb(DECIMALS)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"more than {DECIMALS} decimals: {shown!r}")
    return int(scaled)


def from_fixed(value: int) -> str:
    """The canonical decimal string of a fixed-point integer."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), SCALE)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:09d}".rstrip("0")


def to_decimal(value: int) -> Decimal:
    """Fixed-point to an exact Decimal (for display and arithmetic outside the hot path)."""
    return Decimal(value).scaleb(-DECIMALS)
