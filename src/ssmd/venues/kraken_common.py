"""Kraken spot facts shared by WS v1 and v2: asset names and REST AssetPairs.

Kraken's REST names carry legacy prefixes (XXBT, ZUSD, XETH) and call bitcoin XBT and
dogecoin XDG; the normalized symbol is BASE-QUOTE with BTC and DOGE.
Source: docs.kraken.com REST "Get Tradable Asset Pairs".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ssmd.model.fixed import to_fixed
from ssmd.model.instrument import Instrument
from ssmd.venues._normalizer import check_channels, check_symbols, chunks, dumps
from ssmd.venues.base import VenueInfo

ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
LEGACY = {
    "XXBT": "BTC", "XETH": "ETH", "XLTC": "LTC", "XXRP": "XRP", "XXLM": "XLM", "XXMR": "XMR",
    "XZEC": "ZEC", "XETC": "ETC", "XREP": "REP", "XMLN": "MLN", "XXDG": "DOGE", "XDAO": "DAO",
    "XICN": "ICN", "XNMC": "NMC", "XXVN": "XVN", "ZUSD": "USD", "ZEUR": "EUR", "ZCAD": "CAD",
    "ZGBP": "GBP", "ZJPY": "JPY", "ZAUD": "AUD", "ZCHF": "CHF", "ZKRW": "KRW",
}  # fmt: skip

BOOK_DEPTHS = (10, 25, 100, 500, 1000)
"""Depths a `book` subscription accepts (v1 and v2 docs: subscribe, `depth`)."""

__all__ = [
    "BOOK_DEPTHS",
    "asset",
    "instruments_url",
    "normalize_pair",
    "parse_asset_pairs",
    "subscription_frames",
]


def subscription_frames(
    info: VenueInfo,
    known: Sequence[str],
    channels: Sequence[str],
    symbols: Sequence[str],
    depth: int | None,
    default_depth: int,
    frame: Callable[[str, int | None, list[str], int], dict[str, Any]],
) -> list[str]:
    """One frame per channel and batch of symbols (v1 and v2 differ only in `frame`,
    called with channel, book depth (None off the book channel), batch, frame index)."""
    syms = check_symbols(symbols, info.max_instruments_per_connection, info.name)
    out: list[str] = []
    for channel in check_channels(channels, known, info.name):
        book_depth = None
        if channel == "book":
            book_depth = depth or default_depth
            if book_depth not in BOOK_DEPTHS:
                raise ValueError(f"book depth must be one of {BOOK_DEPTHS}, not {book_depth}")
        for batch in chunks(syms, info.max_symbols_per_message):
            out.append(dumps(frame(channel, book_depth, batch, len(out))))
    return out


def instruments_url(info: VenueInfo) -> str:
    return f"{info.rest_url}/AssetPairs"


def asset(code: str) -> str:
    """A Kraken asset code as we name it: 'XXBT' -> 'BTC', 'XBT' -> 'BTC', 'ZUSD' -> 'USD'."""
    code = code.upper()
    return LEGACY.get(code) or ALIASES.get(code, code)


def normalize_pair(wsname: str) -> str:
    """'XBT/USD' -> 'BTC-USD' (WS v1 names; v2 already says BTC/USD)."""
    base, _, quote = wsname.partition("/")
    return f"{asset(base)}-{asset(quote)}" if quote else wsname


def _pow10(decimals: int) -> int:
    """10^-decimals in fixed-point; 0 ("unknown") below 1e-9, which int64 nanos cannot hold."""
    return 10 ** (9 - decimals) if 0 <= decimals <= 9 else 0


def parse_asset_pairs(body: bytes | str) -> list[Instrument]:
    """GET /0/public/AssetPairs -> instruments. `venue_symbol` is the WS name ('XBT/USD').

    tick: `tick_size` when present (newer responses), else 10^-pair_decimals;
    lot: 10^-lot_decimals (the size increment); `ordermin` kept in `extra`.
    """
    doc: dict[str, Any] = msgspec.json.decode(body)
    if doc.get("error"):
        raise ValueError(f"AssetPairs error: {doc['error']}")
    out = []
    for rest_name, pair in sorted(doc.get("result", {}).items()):
        wsname = pair.get("wsname") or ""
        if wsname:
            base, _, quote = wsname.partition("/")
        else:
            base, quote = pair.get("base", ""), pair.get("quote", "")
        base, quote = asset(base), asset(quote)
        pair_dec = int(pair.get("pair_decimals", 0))
        lot_dec = int(pair.get("lot_decimals", 0))
        tick = pair.get("tick_size")
        extra = {
            "rest_name": rest_name,
            "altname": str(pair.get("altname", "")),
            "pair_decimals": str(pair_dec),
            "lot_decimals": str(lot_dec),
        }
        for key in ("ordermin", "costmin", "cost_decimals"):
            if key in pair:
                extra[key] = str(pair[key])
        status = str(pair.get("status", "online"))
        out.append(
            Instrument(
                venue="kraken",
                venue_symbol=wsname or rest_name,
                symbol=f"{base}-{quote}",
                kind="spot",
                base=base,
                quote=quote,
                tick_size=to_fixed(str(tick)) if tick is not None else _pow10(pair_dec),
                lot_size=_pow10(lot_dec),
                status="open" if status == "online" else status,
                extra=extra,
            )
        )
    return out
