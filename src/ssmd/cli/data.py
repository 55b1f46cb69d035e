"""`ssmd data …`: history queries over the Parquet archive and the recent stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import INVALID, UNREACHABLE, CliError, JsonOpt, emit, err_console, print_json
from ssmd.cli.reprocess import data_root, parse_when
from ssmd.cli.stack import DataDirOpt

app = typer.Typer(help="Query history: trades, quotes, book at a time, bars, export, catalog.",
                  no_args_is_help=True)  # fmt: skip

EnvOpt = typer.Option("dev", "--env", "-e", help="Environment name or .yaml path.")
FeedOpt = typer.Option(None, "--feed", "-f", help="Feed [default: the only one].")
SymbolOpt = typer.Option(..., "--symbol", "-s", help="Normalized symbol, e.g. BTC-USD.")
FromOpt = typer.Option(..., "--from", help="Start, inclusive (ns or ISO-8601).")
ToOpt = typer.Option(..., "--to", help="End, exclusive (ns or ISO-8601).")
ByOpt = typer.Option("ts_event", "--by", help="Time column: ts_event or ts_recv.")
VersionOpt = typer.Option(None, "--version", "-V", help="Archive version [default: newest].")
NatsOpt = typer.Option(None, "--nats-url", help="NATS for the recent window [default: stack's].")
NoStreamOpt = typer.Option(False, "--no-stream", help="Archive only; do not read JetStream.")
LimitOpt = typer.Option(50, "--limit", help="Rows shown in the table form (0 = all).")


def _history(
    env: str, feed: str | None, version: int | None, nats_url: str | None, no_stream: bool,
    data_dir: Path | None, directory: Path,
) -> Any:  # fmt: skip
    from ssmd.bus.msgid import seq_scope
    from ssmd.history.query import History
    from ssmd.stack.state import NotConfigured, resolve_nats_url
    from ssmd.storage import ObjectStore, StoreError

    definition = load_env(env, directory)
    feeds = sorted(definition.feeds)
    if feed is None:
        if len(feeds) != 1:
            raise CliError("--feed is required", INVALID, f"feeds: {', '.join(feeds) or 'none'}")
        feed = feeds[0]
    if feed not in definition.feeds:
        raise CliError(f"no feed {feed!r} in {definition.metadata.name}", INVALID,
                       f"feeds: {', '.join(feeds) or 'none'}")  # fmt: skip
    if version is not None and version < 1:
        raise CliError(f"--version must be >= 1, not {version}", INVALID)
    root = data_root(definition, data_dir)
    url = None
    if not no_stream:
        try:
            url = resolve_nats_url(nats_url)
        except NotConfigured:
            err_console.print("[dim]note: no NATS configured; archive only (--nats-url)[/]")
    try:
        store = ObjectStore.from_spec(definition.storage, root)
    except StoreError as exc:
        raise CliError(str(exc), UNREACHABLE, exc.hint) from None
    return History(store, definition.metadata.name, feed, version=version, nats_url=url,
                   scope=seq_scope(definition.feeds[feed].venue), cache=root / "cache")  # fmt: skip


def _range(start: str, end: str, by: str) -> tuple[int, int]:
    from ssmd.history.query import QueryError, check_range

    t0, t1 = parse_when(start, "--from"), parse_when(end, "--to")
    try:
        check_range(t0, t1, by)
    except QueryError as exc:
        raise CliError(str(exc), INVALID) from None
    return t0, t1


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Library errors → CLI errors with the right exit code."""
    from ssmd.history.query import QueryError
    from ssmd.history.stream import StreamUnavailable
    from ssmd.storage import StoreError

    try:
        return fn(*args, **kwargs)
    except QueryError as exc:
        raise CliError(str(exc), INVALID) from None
    except StreamUnavailable as exc:
        raise CliError(str(exc), UNREACHABLE, "start NATS or pass --no-stream") from None
    except StoreError as exc:
        raise CliError(str(exc), UNREACHABLE, exc.hint) from None


def _wire(kind: str, table: Any) -> list[dict[str, Any]]:
    from ssmd.history.schema import from_table
    from ssmd.model.codec import to_wire

    return [to_wire(r) for r in from_table(kind, table)]


def _records_cmd(
    kind: str, env: str, feed: str | None, symbol: str, start: str, end: str, by: str,
    version: int | None, nats_url: str | None, no_stream: bool, limit: int, as_json: bool,
    data_dir: Path | None, directory: Path,
) -> None:  # fmt: skip
    t0, t1 = _range(start, end, by)
    h = _history(env, feed, version, nats_url, no_stream, data_dir, directory)
    table = _run(h.records, kind, symbol, t0, t1, by)
    rows = _wire(kind, table)
    if as_json:
        print_json({"type": kind, "symbol": symbol, "from": t0, "to": t1, "by": by,
                    "version": h.version, "sources": h.sources, "count": len(rows),
                    "records": rows})  # fmt: skip
        return
    cols = [c for c in (rows[0] if rows else {"ts_event": 0}) if c not in ("feed", "venue")]
    shown = rows if limit == 0 else rows[:limit]
    emit(False, None, f"{kind}s {symbol}: {len(rows)} ({h.sources})", cols,
         [[r.get(c) for c in cols] for r in shown])  # fmt: skip


@app.command("trades")
def trades(
    env: str = EnvOpt, feed: str | None = FeedOpt, symbol: str = SymbolOpt, start: str = FromOpt,
    end: str = ToOpt, by: str = ByOpt, version: int | None = VersionOpt,
    nats_url: str | None = NatsOpt, no_stream: bool = NoStreamOpt, limit: int = LimitOpt,
    as_json: bool = JsonOpt, data_dir: Path | None = DataDirOpt, directory: Path = DirOpt,
) -> None:  # fmt: skip
    """Trades of one symbol in [from, to) by ts_event or ts_recv."""
    _records_cmd("trade", env, feed, symbol, start, end, by, version, nats_url, no_stream,
                 limit, as_json, data_dir, directory)  # fmt: skip


@app.command("quotes")
def quotes(
    env: str = EnvOpt, feed: str | None = FeedOpt, symbol: str = SymbolOpt, start: str = FromOpt,
    end: str = ToOpt, by: str = ByOpt, version: int | None = VersionOpt,
    nats_url: str | None = NatsOpt, no_stream: bool = NoStreamOpt, limit: int = LimitOpt,
    as_json: bool = JsonOpt, data_dir: Path | None = DataDirOpt, directory: Path = DirOpt,
) -> None:  # fmt: skip
    """Best bid/offer updates of one symbol in [from, to)."""
    _records_cmd("quote", env, feed, symbol, start, end, by, version, nats_url, no_stream,
                 limit, as_json, data_dir, directory)  # fmt: skip


@app.command("book-at")
def book_at(
    env: str = EnvOpt, feed: str | None = FeedOpt, symbol: str = SymbolOpt,
    at: str = typer.Option(..., "--at", help="Time (ns or ISO-8601)."),
    by: str = ByOpt, depth: int = typer.Option(10, "--depth", help="Levels shown per side."),
    version: int | None = VersionOpt, nats_url: str | None = NatsOpt,
    no_stream: bool = NoStreamOpt, as_json: bool = JsonOpt,
    data_dir: Path | None = DataDirOpt, directory: Path = DirOpt,
) -> None:  # fmt: skip
    """The L2 book at a time: last snapshot + deltas; 'unknown' after a gap (exit 0)."""
    from ssmd.model.fixed import from_fixed

    when = parse_when(at, "--at")
    if by not in ("ts_event", "ts_recv"):
        raise CliError(f"--by must be ts_event or ts_recv, not {by!r}", INVALID)
    if depth < 0:
        raise CliError(f"--depth must be >= 0, not {depth}", INVALID)
    h = _history(env, feed, version, nats_url, no_stream, data_dir, directory)
    book = _run(h.book_at, symbol, when, by)
    cut = (lambda lv: lv[:depth]) if depth else (lambda lv: lv)
    bids = [[from_fixed(p), from_fixed(s)] for p, s in cut(book.bids)]
    asks = [[from_fixed(p), from_fixed(s)] for p, s in cut(book.asks)]
    doc = {"symbol": symbol, "at": when, "by": by, "known": book.known, "reason": book.reason,
           "snapshot_ts_recv": book.snapshot_ts_recv, "deltas": book.deltas,
           "last_ts_recv": book.last_ts_recv, "bids": bids, "asks": asks}  # fmt: skip
    if as_json:
        print_json(doc)
        return
    if not book.known:
        err_console.print(f"book of {symbol} unknown at {when}: {book.reason}", soft_wrap=True)
        return
    rows = [[*(bids[i] if i < len(bids) else ["", ""]), *(asks[i] if i < len(asks) else ["", ""])]
            for i in range(max(len(bids), len(asks)))]  # fmt: skip
    emit(False, None, f"{symbol} at {when} ({book.deltas} deltas after the snapshot)",
         ["bid", "bid size", "ask", "ask size"], rows)  # fmt: skip


@app.command("bars")
def bars(
    env: str = EnvOpt, feed: str | None = FeedOpt, symbol: str = SymbolOpt, start: str = FromOpt,
    end: str = ToOpt, interval: str = typer.Option("1m", "--interval", help="e.g. 1s, 5m, 1h."),
    by: str = ByOpt, version: int | None = VersionOpt, nats_url: str | None = NatsOpt,
    no_stream: bool = NoStreamOpt, limit: int = LimitOpt, as_json: bool = JsonOpt,
    data_dir: Path | None = DataDirOpt, directory: Path = DirOpt,
) -> None:  # fmt: skip
    """OHLCV bars from trades (bar start, open, high, low, close, volume, trades)."""
    from ssmd.model.fixed import from_fixed
    from ssmd.spec.units import parse_duration

    try:
        iv = parse_duration(interval)
    except ValueError as exc:
        raise CliError(f"--interval: {exc}", INVALID) from None
    if iv <= 0:
        raise CliError("--interval must be positive", INVALID)
    t0, t1 = _range(start, end, by)
    h = _history(env, feed, version, nats_url, no_stream, data_dir, directory)
    table = _run(h.bars, symbol, t0, t1, iv, by)
    rows = [
        {**r, **{k: from_fixed(r[k]) for k in ("open", "high", "low", "close", "volume")}}
        for r in table.to_pylist()
    ]
    if as_json:
        print_json({"symbol": symbol, "interval_ns": iv, "by": by, "sources": h.sources,
                    "bars": rows})  # fmt: skip
        return
    cols = ["ts", "open", "high", "low", "close", "volume", "trades"]
    shown = rows if limit == 0 else rows[:limit]
    emit(False, None, f"{symbol} {interval} bars: {len(rows)}", cols,
         [[r[c] for c in cols] for r in shown])  # fmt: skip


FORMATS = ("parquet", "csv", "jsonl")


@app.command("export")
def export(
    env: str = EnvOpt, feed: str | None = FeedOpt, symbol: str = SymbolOpt, start: str = FromOpt,
    end: str = ToOpt, kind: str = typer.Option("trade", "--type", "-t", help="Record type."),
    fmt: str = typer.Option("parquet", "--format", help="parquet | csv | jsonl."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write ('-' = stdout)."),
    by: str = ByOpt, version: int | None = VersionOpt, nats_url: str | None = NatsOpt,
    no_stream: bool = NoStreamOpt, as_json: bool = JsonOpt,
    data_dir: Path | None = DataDirOpt, directory: Path = DirOpt,
) -> None:  # fmt: skip
    """Export one type and symbol over [from, to): Parquet (archive schema, fixed-point
    ints), or CSV / JSON lines (wire form: decimal strings)."""
    from ssmd.history.export import write_export
    from ssmd.history.schema import SCHEMAS

    if fmt not in FORMATS:
        raise CliError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}", INVALID)
    if kind not in SCHEMAS:
        raise CliError(f"--type must be one of {', '.join(SCHEMAS)}, not {kind!r}", INVALID)
    if fmt == "parquet" and str(output) == "-":
        raise CliError("Parquet cannot go to stdout; give --output FILE", INVALID)
    t0, t1 = _range(start, end, by)
    h = _history(env, feed, version, nats_url, no_stream, data_dir, directory)
    table = _run(h.records, kind, symbol, t0, t1, by)
    count = write_export(kind, table, fmt, None if str(output) == "-" else output)
    doc = {"type": kind, "symbol": symbol, "format": fmt, "output": str(output), "rows": count,
           "sources": h.sources}  # fmt: skip
    if as_json:
        print_json(doc)
    elif str(output) != "-":
        err_console.print(f"wrote {count} {kind} record(s) to {output}")


@app.command("catalog")
def catalog_cmd(
    env: str = EnvOpt,
    feed: str | None = typer.Option(None, "--feed", "-f", help="Only this feed."),
    as_json: bool = JsonOpt, data_dir: Path | None = DataDirOpt, directory: Path = DirOpt,
) -> None:  # fmt: skip
    """What the archive holds per version, feed and day: types, rows, bytes, gaps."""
    from ssmd.history.catalog import catalog
    from ssmd.storage import ObjectStore, StoreError

    definition = load_env(env, directory)
    root = data_root(definition, data_dir)
    try:
        store = ObjectStore.from_spec(definition.storage, root)
        rows = catalog(store, definition.metadata.name, feed)
    except StoreError as exc:
        raise CliError(str(exc), UNREACHABLE, exc.hint) from None
    table = [
        [r["version"], r["feed"], r["date"],
         ", ".join(f"{k}:{v['rows']}" for k, v in sorted(r["types"].items())),
         r["bytes"], r["gaps"], f"{r['complete_hours']}/{r['hours']}", r["quarantined"]]
        for r in rows
    ]  # fmt: skip
    cols = ["v", "feed", "date", "rows", "bytes", "gaps", "hours ok", "quarantined"]
    emit(as_json, {"env": definition.metadata.name, "days": rows}, "archive", cols, table)
