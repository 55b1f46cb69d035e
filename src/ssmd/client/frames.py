"""Rows → pandas / polars DataFrames with exact decimals.

Decision **exact-decimals**: prices and sizes arrive as int fixed-point at 1e-9 (the
`ssmd.model` convention). By default a DataFrame holds them exactly —
`decimal.Decimal` objects in pandas (object dtype), `pl.Decimal(38, 9)` in polars.
`decimals="fixed"` keeps the int64 fixed-point (scale `ssmd.model.SCALE` = 1e9: fast,
exact, vectorized); `decimals="float"` converts to float64, lossy, only when asked.
Times (`ts_event`, `ts_recv`, bar `ts`) become UTC datetimes at ns resolution
(exact); `times="ns"` keeps the integers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Literal

from ssmd.model.fixed import SCALE, from_fixed

Decimals = Literal["decimal", "fixed", "float"]
Times = Literal["datetime", "ns"]
TIME_COLUMNS = ("ts_event", "ts_recv", "ts")


class Layout:
    """Which columns of the rows hold what (decimal scalars, L2 levels, times)."""

    def __init__(
        self, columns: Sequence[str], decimals: Iterable[str], levels: Iterable[str] = ()
    ) -> None:
        self.columns = list(columns)
        self.decimals = set(decimals) & set(self.columns)
        self.levels = set(levels) & set(self.columns)
        self.times = set(TIME_COLUMNS) & set(self.columns)


def _check(decimals: str, times: str) -> None:
    if decimals not in ("decimal", "fixed", "float"):
        raise ValueError(f"decimals must be 'decimal', 'fixed' or 'float', not {decimals!r}")
    if times not in ("datetime", "ns"):
        raise ValueError(f"times must be 'datetime' or 'ns', not {times!r}")


def _scalar(value: int | None, decimals: str) -> Any:
    if value is None or decimals == "fixed":
        return value
    if decimals == "float":
        return value / SCALE
    return Decimal(from_fixed(value))


def _levels(levels: list[Any], decimals: str) -> list[tuple[Any, Any]]:
    return [(_scalar(p, decimals), _scalar(s, decimals)) for p, s in levels]


def _columns(rows: list[dict[str, Any]], layout: Layout, decimals: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for name in layout.columns:
        values = [r.get(name) for r in rows]
        if name in layout.decimals:
            values = [_scalar(v, decimals) for v in values]
        elif name in layout.levels:
            values = [None if lv is None else _levels(lv, decimals) for lv in values]
        out[name] = values
    return out


def to_pandas(rows: list[dict[str, Any]], layout: Layout, decimals: Decimals, times: Times) -> Any:
    """A pandas DataFrame (pandas is the optional extra `ssmd[dataframes]`)."""
    _check(decimals, times)
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("to_pandas needs pandas: pip install 'ssmd[dataframes]'") from exc
    cols = _columns(rows, layout, decimals)
    frame = pd.DataFrame({k: pd.Series(v, dtype=_pandas_dtype(k, layout, decimals))
                          for k, v in cols.items()})  # fmt: skip
    if times == "datetime":
        for name in layout.times:
            frame[name] = pd.to_datetime(frame[name].astype("int64"), unit="ns", utc=True)
    return frame


def _pandas_dtype(name: str, layout: Layout, decimals: str) -> Any:
    if name in layout.levels:
        return object
    if name in layout.decimals:
        return {"decimal": object, "fixed": "Int64", "float": "float64"}[decimals]
    return None


def to_polars(rows: list[dict[str, Any]], layout: Layout, decimals: Decimals, times: Times) -> Any:
    """A polars DataFrame (polars is the optional extra `ssmd[dataframes]`)."""
    _check(decimals, times)
    try:
        import polars as pl
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("to_polars needs polars: pip install 'ssmd[dataframes]'") from exc
    scalar: Any = {"decimal": pl.Decimal(38, 9), "fixed": pl.Int64, "float": pl.Float64}[decimals]
    level = pl.List(pl.Struct({"price": scalar, "size": scalar}))
    series = []
    for name, values in _columns(rows, layout, decimals).items():
        if name in layout.decimals:
            s = pl.Series(name, values, dtype=scalar)
        elif name in layout.levels:
            structs = [None if lv is None else [{"price": p, "size": z} for p, z in lv]
                       for lv in values]  # fmt: skip
            s = pl.Series(name, structs, dtype=level)
        elif name in layout.times:
            s = pl.Series(name, values, dtype=pl.Int64)
            if times == "datetime":
                s = s.cast(pl.Datetime("ns", "UTC"))
        else:
            s = pl.Series(name, values, strict=False)
        series.append(s)
    return pl.DataFrame(series)
