"""`ssmd instrument`: the security master — map venue symbols, list, show history.

Every instrument has a stable integer iid; its attributes are effective-dated, so
`--at TIME` (ISO-8601 or ns) answers what was true then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import typer

from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import (
    INVALID,
    UNREACHABLE,
    CliError,
    JsonOpt,
    console,
    emit,
    print_json,
    print_table,
)
from ssmd.cli.pg import ActorOpt, PgUrlOpt, actor_name, meta_session
from ssmd.control.reference import (
    ReferenceUnavailable,
    fetch_instruments,
    reference_url,
    sync_feed,
)
from ssmd.meta import audit, instruments
from ssmd.meta.instruments import KINDS, HistoryError, InstrumentVersion
from ssmd.model.fixed import from_fixed, to_fixed
from ssmd.model.instrument import Instrument
from ssmd.model.time import format_ns, now_ns, parse_time

app = typer.Typer(
    help="The security master: stable integer iids for venue symbols, with effective-dated "
    "history (--at TIME answers point-in-time).",
    no_args_is_help=True,
)

AtOpt = typer.Option(
    None, "--at", help="Point in time: ISO-8601 (2026-01-01T00:00:00Z) or ns (default: now)."
)


def _time(text: str | None, what: str = "--at") -> int | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise CliError(f"{what}: {exc}", INVALID) from None


def _fixed(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    try:
        value = to_fixed(text)
    except ValueError as exc:
        raise CliError(f"{what}: {exc}", INVALID) from None
    if value < 0:
        raise CliError(f"{what}: must be >= 0", INVALID)
    return value


def view(v: InstrumentVersion) -> dict[str, Any]:
    """JSON form: sizes as canonical decimal strings (as on every JSON wire), times in ns."""
    out = msgspec.to_builtins(v)
    out["tick_size"] = from_fixed(v.tick_size)
    out["lot_size"] = from_fixed(v.lot_size)
    return out


def _when(ns: int | None) -> str:
    return "" if ns is None else format_ns(ns)


@app.command("map")
def map_cmd(
    venue: str = typer.Option(..., "--venue", help="Venue id, e.g. kraken-v2."),
    venue_symbol: str = typer.Option(..., "--venue-symbol", help="The venue's own symbol."),
    symbol: str | None = typer.Option(
        None, "--symbol", help="Normalized symbol, e.g. BTC-USD (required for a new mapping)."
    ),
    kind: str | None = typer.Option(
        None, "--kind", help=f"{' | '.join(KINDS)} (required for a new mapping)."
    ),
    base: str | None = typer.Option(None, "--base", help="Base asset, e.g. BTC."),
    quote: str | None = typer.Option(None, "--quote", help="Quote asset, e.g. USD."),
    tick: str | None = typer.Option(None, "--tick", help="Price increment, decimal (0.1)."),
    lot: str | None = typer.Option(None, "--lot", help="Size increment, decimal (0.0001)."),
    status: str | None = typer.Option(None, "--status", help="open, halted, closed, settled…"),
    expiry: str | None = typer.Option(None, "--expiry", help="Expiry time (ISO-8601 or ns)."),
    at: str | None = typer.Option(
        None, "--at", help="When the mapping takes effect (ISO-8601 or ns) (default: now)."
    ),
    as_json: bool = JsonOpt,
    actor: str | None = ActorOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """Map a venue symbol to an instrument, or change its attributes from --at on.

    Options left out keep their current values; identical attributes change nothing.
    The iid is allocated once and never changes or gets reused. Audited when it changes.
    """
    effective = _time(at) or now_ns()
    changes: dict[str, Any] = {
        "symbol": symbol,
        "kind": kind,
        "base": base,
        "quote": quote,
        "tick_size": _fixed(tick, "--tick"),
        "lot_size": _fixed(lot, "--lot"),
        "status": status,
        "expiry_ns": _time(expiry, "--expiry"),
    }
    given = {k: v for k, v in changes.items() if v is not None}
    if kind is not None and kind not in KINDS:
        raise CliError(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})", INVALID)
    with meta_session(pg_url) as conn:
        current = instruments.current(conn, venue, venue_symbol)
        if current is None:
            missing = [f"--{k}" for k in ("symbol", "kind") if k not in given]
            if missing:
                raise CliError(
                    f"{venue} {venue_symbol} is not mapped yet: {' and '.join(missing)} required",
                    INVALID,
                )
            inst = msgspec.convert(
                {"venue": venue, "venue_symbol": venue_symbol} | given, Instrument
            )
        else:
            inst = msgspec.structs.replace(current.instrument(), **given)
        try:
            done = instruments.upsert(conn, inst, effective)
        except (HistoryError, ValueError) as exc:
            raise CliError(str(exc), INVALID) from None
        if done.outcome != "unchanged":
            audit.append(
                conn,
                actor_name(actor),
                f"instrument.{'map' if done.outcome == 'created' else 'change'}",
                f"instrument/{done.iid}",
                {
                    "venue": venue,
                    "venue_symbol": venue_symbol,
                    "effective_ns": effective,
                    "set": {k: getattr(done.version, k) for k in given},
                },
            )
    if as_json:
        print_json({"iid": done.iid, "outcome": done.outcome, "current": view(done.version)})
        return
    v = done.version
    typer.echo(
        f"iid {done.iid} {done.outcome}: {v.venue} {v.venue_symbol} → {v.symbol} ({v.kind}), "
        f"in force since {_when(v.valid_from)}"
    )


@app.command("list")
def list_cmd(
    venue: str | None = typer.Option(None, "--venue", help="Only this venue."),
    symbol: str | None = typer.Option(
        None, "--symbol", help="Glob on the normalized or venue symbol, e.g. 'BTC-*'."
    ),
    at: str | None = AtOpt,
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """Instruments in force at --at (default now), by iid."""
    ts = _time(at)
    with meta_session(pg_url) as conn:
        found = instruments.search(conn, venue=venue, symbol=symbol, ts_ns=ts)
    emit(
        as_json,
        [view(v) for v in found],
        "instruments" + (f" at {_when(ts)}" if ts is not None else ""),
        [
            "iid",
            "venue",
            "venue symbol",
            "symbol",
            "kind",
            "tick",
            "lot",
            "status",
        ],
        [
            [
                v.iid,
                v.venue,
                v.venue_symbol,
                v.symbol,
                v.kind,
                from_fixed(v.tick_size),
                from_fixed(v.lot_size),
                v.status,
            ]
            for v in found
        ],
    )


@app.command()
def show(
    ref: str = typer.Argument(..., metavar="IID|SYMBOL", help="An iid, or a (venue) symbol."),
    venue: str | None = typer.Option(None, "--venue", help="Narrow a symbol to one venue."),
    at: str | None = AtOpt,
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """One instrument at --at (default now), with its whole history."""
    ts = _time(at)
    with meta_session(pg_url) as conn:
        iids = [int(ref)] if ref.isdigit() else instruments.find_by_symbol(conn, ref, venue=venue)
        found = [
            (iid, instruments.at(conn, iid, ts), instruments.history(conn, iid)) for iid in iids
        ]
    found = [f for f in found if f[2]]
    if not found:
        raise CliError(
            f"no instrument {ref!r}" + (f" on {venue}" if venue else ""),
            INVALID,
            "see `ssmd instrument list`, or map one with `ssmd instrument map`",
        )
    if as_json:
        docs = [
            {
                "iid": iid,
                "at_ns": ts,
                "current": None if cur is None else view(cur),
                "history": [view(h) for h in hist],
            }
            for iid, cur, hist in found
        ]
        print_json(docs[0] if len(docs) == 1 else docs)
        return
    for iid, cur, hist in found:
        head = hist[0]
        console.print(
            f"[bold]iid {iid}[/]  {head.venue} {head.venue_symbol}"
            + ("" if cur is not None else "  (not in force at that time)"),
            highlight=False,
        )
        print_table(
            "history (newest first)",
            ["from", "to", "symbol", "kind", "base", "quote", "tick", "lot", "status", "expiry"],
            [
                [
                    _when(h.valid_from),
                    _when(h.valid_to),
                    h.symbol,
                    h.kind,
                    h.base,
                    h.quote,
                    from_fixed(h.tick_size),
                    from_fixed(h.lot_size),
                    h.status,
                    _when(h.expiry_ns) if h.expiry_ns else "",
                ]
                for h in hist
            ],
        )


@app.command()
def sync(
    feed: str = typer.Argument(..., help="Feed whose venue's reference data to load."),
    env: str = typer.Option(
        "dev", "--env", "-e", envvar="SSMD_ENV", help="Environment name or .yaml path."
    ),
    everything: bool = typer.Option(
        False, "--all", help="Every instrument the venue lists, not only the feed's."
    ),
    rest_url: str | None = typer.Option(
        None,
        "--rest-url",
        help="Fetch from this base URL instead of the venue's (replay server, proxy).",
    ),
    directory: Path = DirOpt,
    pg_url: str | None = PgUrlOpt,
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Load the venue's REST reference data (tick and lot size, status, expiry) into the
    secmaster for a feed's instruments, as new effective-dated versions under their
    existing iids; audited. Exit 1 when the feed lists instruments the venue does not
    (they are named), 3 when the venue or Postgres cannot be reached."""
    definition = load_env(env, directory)
    if feed not in definition.feeds:
        known = ", ".join(sorted(definition.feeds)) or "none"
        raise CliError(
            f"no feed {feed!r} in {definition.metadata.name}", INVALID, f"feeds: {known}"
        )
    url = reference_url(definition, feed, rest_url)
    try:
        parsed, pages = fetch_instruments(definition, feed, url, everything=everything)
    except ReferenceUnavailable as exc:
        raise CliError(str(exc), UNREACHABLE, "check --rest-url or the network") from None
    except ValueError as exc:
        raise CliError(f"{url}: {exc}", INVALID) from None
    with meta_session(pg_url) as conn:
        try:
            done = sync_feed(conn, definition, feed, parsed, url, actor_name(actor),
                             pages=pages, everything=everything)  # fmt: skip
        except (HistoryError, ValueError) as exc:
            raise CliError(f"{url}: {exc}", INVALID) from None
    row = [done.pages, len(done.created), len(done.changed), done.unchanged,
           ", ".join(done.missing)]  # fmt: skip
    columns = ["pages", "created", "changed", "unchanged", "missing"]
    emit(as_json, msgspec.to_builtins(done), f"{feed}: reference data from {url}", columns, [row])
    if done.missing:
        raise CliError(
            f"the venue does not list {', '.join(done.missing)} (feed {feed})", INVALID,
            "check the instrument names in the definition",
        )  # fmt: skip
