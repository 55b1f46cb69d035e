"""`ssmd venue`: the venue protocols ssmd speaks, and a verifier anyone can run.

`verify` replays a recording (the fixtures' cryptofeed format, or our raw journal
`*.jsonl[.zst]`) through the venue's parser and book integrity checks, feeding REST
siblings (`FEED.R` instrument lists, `FEED.http.*.R` depth snapshots) in time order.
"""

from __future__ import annotations

import heapq
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from ssmd.capture.derive import Deriver
from ssmd.cli.output import INVALID, CliError, JsonOpt, console, emit, print_json
from ssmd.venues.base import Normalizer
from ssmd.venues.recording import (
    Frame,
    guess_venue,
    iter_cryptofeed,
    iter_journal,
    rest_sibling_names,
)
from ssmd.venues.registry import VENUES, venue_info

app = typer.Typer(help="Venue protocols: list them, verify recordings.", no_args_is_help=True)

INTEGRITY_KEYS = ("checksums_failed", "sequence_gaps", "crossed", "parse_errors")


# -- loading (the I/O half; ssmd.venues stays pure) -------------------------------------


def _lines(path: Path) -> Iterator[str]:
    if path.suffix == ".zst":
        import zstandard

        with zstandard.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            yield from fh
    else:
        with path.open(encoding="utf-8", errors="replace", newline="\n") as fh:
            yield from fh


def is_journal(path: Path) -> bool:
    return ".jsonl" in path.name


def load_frames(path: Path) -> list[Frame]:
    """All frames of one file, in file order."""
    lines = _lines(path)
    return list(iter_journal(lines) if is_journal(path) else iter_cryptofeed(lines))


def rest_siblings(path: Path) -> list[Path]:
    """REST files recorded beside a websocket recording, found by name."""
    found: list[Path] = []
    for pattern in rest_sibling_names(path.name):
        found.extend(sorted(p for p in path.parent.glob(pattern) if p != path))
    return found


def load_recording(path: Path) -> tuple[list[Frame], list[Path]]:
    """Frames of a recording merged (by receive time) with its REST siblings' frames.

    Instrument lists (`FEED.R`) come first whatever their time: parsers need them to
    name symbols; snapshots (`FEED.http.*`) interleave by time, as they were received.
    """
    siblings = rest_siblings(path)
    lead: list[Frame] = []
    timed = [load_frames(path)]
    for sib in siblings:
        frames = load_frames(sib)
        if ".http." in sib.name:
            timed.append(frames)
        else:
            lead.extend(frames)
    merged = list(heapq.merge(*timed, key=lambda f: f.ts_recv))
    return lead + merged, siblings


def venue_normalizer(name: str, **kwargs: Any) -> Normalizer:
    """A fresh normalizer from a registry venue's module; CliError if unavailable."""
    try:
        info = venue_info(name)
    except KeyError as exc:
        raise CliError(str(exc.args[0]), INVALID) from None
    try:
        module = importlib.import_module(info.module)
    except ImportError as exc:
        raise CliError(
            f"venue {name!r}: adapter module {info.module} is not available ({exc})",
            INVALID,
            "see `ssmd venue list` for the venues whose adapters are installed",
        ) from None
    factory = getattr(module, "normalizer", None)
    if not callable(factory):
        raise CliError(f"venue {name!r}: {info.module} defines no normalizer()", INVALID)
    return factory(**kwargs)


def replay(
    deriver: Deriver, frames: list[Frame], records: list[Any] | None = None
) -> dict[str, Any]:
    """Feed a recording's frames through the shared derivation; the verifier's report.
    `records` collects the output."""
    resyncs = 0
    for frame in frames:
        if frame.direction == "error":
            deriver.unreadable += 1
            continue
        out = deriver.line(frame.direction, frame.payload, frame.ts_recv, frame.endpoint)
        if records is not None:
            records.extend(out)
        resyncs += len(deriver.take_resyncs())
    stats = deriver.stats
    return {
        "frames": stats.frames,
        "records": dict(sorted(stats.records.items())),
        "checksums_verified": stats.checksums_verified,
        "checksums_failed": stats.checksums_failed,
        "sequence_gaps": stats.sequence_gaps,
        "crossed": stats.crossed,
        "parse_errors": stats.parse_errors + deriver.unreadable,
        "resyncs": resyncs,
    }


def verify_path(path: Path, venue: str | None = None) -> dict[str, Any]:
    """Replay one recording; the report (with `venue`, `recording`, `rest_files`, `ok`)."""
    if not path.is_file():
        raise CliError(f"no such recording: {path}", INVALID)
    name = venue or guess_venue(path.name)
    if name is None:
        raise CliError(
            f"cannot tell the venue of {path.name}",
            INVALID,
            f"pass --venue, one of: {', '.join(sorted(VENUES))}",
        )
    venue_normalizer(name)  # a clear error if the adapter is not available
    frames, siblings = load_recording(path)
    report = replay(Deriver(name), frames)
    report["venue"] = name
    report["recording"] = str(path)
    report["rest_files"] = [str(s) for s in siblings]
    report["ok"] = not any(report[k] for k in INTEGRITY_KEYS)
    return report


# -- commands -------------------------------------------------------------------------


@app.command("verify")
def verify(
    recording: Path = typer.Argument(..., help="A recording: cryptofeed format or *.jsonl[.zst]."),
    venue: str = typer.Option(None, "--venue", help="Registry venue; guessed from the name."),
    as_json: bool = JsonOpt,
) -> None:
    """Replay a recording through parser and book; exit 1 if any integrity check failed."""
    report = verify_path(recording, venue)
    if as_json:
        print_json(report)
    else:
        console.print(f"[bold]{recording.name}[/] as [cyan]{report['venue']}[/]")
        for sib in report["rest_files"]:
            console.print(f"  with REST sibling {Path(sib).name}")
        rows: list[list[Any]] = [["frames", report["frames"]]]
        rows += [[f"records: {k}", v] for k, v in report["records"].items()]
        rows += [[k, report[k]] for k in ("checksums_verified", *INTEGRITY_KEYS, "resyncs")]
        emit(False, None, "verify", ["what", "count"], rows)
        verdict = "[green]ok[/]" if report["ok"] else "[red]integrity check failed[/]"
        console.print(verdict)
    if not report["ok"]:
        raise typer.Exit(1)


def _available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _native(module: str) -> bool | None:
    """Whether the venue module's C path is built (None: it has none)."""
    try:
        return getattr(importlib.import_module(module), "NATIVE", None)
    except ImportError:
        return None


@app.command("list")
def list_venues(as_json: bool = JsonOpt) -> None:
    """The venue protocols in the registry, their limits, whether their adapter is here
    and, where a venue has one, whether its C fast path was built ("native")."""
    items = [
        {
            "name": info.name,
            "venue": info.venue,
            "module": info.module,
            "available": _available(info.module),
            "native": _native(info.module),
            "channels": list(info.channels),
            "max_instruments_per_connection": info.max_instruments_per_connection,
            "max_symbols_per_message": info.max_symbols_per_message,
            "ws_url": info.ws_url,
            "rest_url": info.rest_url,
            "description": info.description,
        }
        for info in VENUES.values()
    ]
    rows = [
        [
            i["name"],
            "yes" if i["available"] else "no",
            {True: "yes", False: "NO (no C compiler at install)", None: "-"}[i["native"]],
            ",".join(i["channels"]),
            i["max_instruments_per_connection"],
            i["max_symbols_per_message"],
            i["description"],
        ]
        for i in items
    ]
    emit(
        as_json,
        items,
        "venues",
        ["name", "adapter", "native", "channels", "max/conn", "max/msg", "description"],
        rows,
    )
