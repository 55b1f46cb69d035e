"""Recorded frames: the fixtures' cryptofeed format and our raw journal, as one stream.

Pure: functions take lines (str) and names; the caller opens files. A recording is read
into `Frame`s (receive time in ns, direction, payload, REST endpoint) so a replay can
feed a normalizer exactly as the connector would have.

Formats:
* cryptofeed (../shared/fixtures/recordings/FORMAT.md): `ts: payload` received,
  `wss://… <- ts: payload` sent, `wss://… <-> ts` connect, `https://… -> ts: body` REST,
  `configuration: {…}` skipped. Timestamps are decimal seconds.
* ssmd raw journal (DESIGN.md §7): one JSON object a line `{t, m, c, d, p}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal, NamedTuple

from ssmd.capture.journal_format import iter_lines

Direction = Literal["in", "out", "open", "close", "error", "rest"]

__all__ = [
    "Frame",
    "guess_venue",
    "iter_cryptofeed",
    "iter_journal",
    "parse_cryptofeed_line",
    "rest_sibling_names",
    "seconds_to_ns",
]


class Frame(NamedTuple):
    ts_recv: int
    """Receive (or send) time, ns since the epoch."""
    direction: Direction
    payload: str
    endpoint: str = ""
    """For REST frames: the URL the body came from."""


def seconds_to_ns(text: str) -> int:
    """'1618678132.8258188' -> 1618678132825818800, exactly (digits past 9 are cut)."""
    whole, _, frac = text.strip().partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"not a timestamp in seconds: {text!r}")
    return int(whole) * 1_000_000_000 + int((frac[:9] or "0").ljust(9, "0"))


def parse_cryptofeed_line(line: str) -> Frame | None:
    """One line of a cryptofeed recording; None for empty, config and unknown lines."""
    line = line.rstrip("\r\n")
    if not line or line.startswith("configuration: "):
        return None
    if line.startswith(("wss://", "ws://")):
        url, sep, rest = line.partition(" <-> ")
        if sep:
            return Frame(seconds_to_ns(rest), "open", "", url)
        url, sep, rest = line.partition(" <- ")
        if not sep:
            return None
        ts, _, payload = rest.partition(": ")
        return Frame(seconds_to_ns(ts), "out", payload, url)
    if line.startswith(("https://", "http://")):
        url, sep, rest = line.partition(" -> ")
        if not sep:
            return None
        ts, _, body = rest.partition(": ")
        head, hsep, _headers = body.rpartition(" header: ")
        if hsep and head.endswith("}"):
            body = head
        return Frame(seconds_to_ns(ts), "rest", body, url)
    ts, sep, payload = line.partition(": ")
    if not sep:
        return None
    return Frame(seconds_to_ns(ts), "in", payload)


def iter_cryptofeed(lines: Iterable[str]) -> Iterator[Frame]:
    """Frames of a cryptofeed recording; an unreadable line becomes an 'error' frame."""
    for line in lines:
        try:
            frame = parse_cryptofeed_line(line)
        except ValueError:
            yield Frame(0, "error", line.rstrip("\r\n"))
            continue
        if frame is not None:
            yield frame


def iter_journal(lines: Iterable[str | bytes]) -> Iterator[Frame]:
    """Our raw journal lines (format owned by ssmd.capture.journal_format; binary
    payloads come back as str via surrogateescape)."""
    for line in iter_lines(lines):
        yield Frame(line.t, line.d, line.text, line.url)  # type: ignore[arg-type]


def rest_sibling_names(name: str) -> list[str]:
    """REST files that belong with a cryptofeed websocket recording, by name.

    `KRAKEN.ws.50.0` -> `KRAKEN.0` (instrument list) and `KRAKEN.http.*.0`
    (snapshots) — returned as patterns `KRAKEN.0` and `KRAKEN.http.*` for the caller
    to glob.
    """
    parts = name.split(".")
    if len(parts) >= 4 and parts[1] == "ws":
        feed, rotation = parts[0], parts[-1]
        return [f"{feed}.{rotation}", f"{feed}.http.*.{rotation}"]
    return []


_GUESS = {
    "KRAKEN": "kraken-v1",
    "KRAKEN_V2": "kraken-v2",
    "BINANCE": "binance",
    "COINBASE": "coinbase-exchange",
    "COINBASE_ADVANCED": "coinbase-advanced",
    "KALSHI": "kalshi",
    "POLYMARKET": "polymarket",
}


def guess_venue(name: str) -> str | None:
    """Registry venue from a recording's file name (`KRAKEN.ws.50.0` -> 'kraken-v1')."""
    head = name.split(".", 1)[0].upper().replace("-", "_")
    if head in _GUESS:
        return _GUESS[head]
    for key in sorted(_GUESS, key=len, reverse=True):
        if key.lower() in name.lower().replace("-", "_"):
            return _GUESS[key]
    return None
