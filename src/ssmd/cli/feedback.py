"""`ssmd feedback`: the issue reports agents and clients filed (docs/feedback.md).

list / show / stats read Postgres; resolve changes a status (audited); forward retries
filing unforwarded issues in the definition's tracker (Linear) and sync pulls their
state back (completed → resolved, canceled → wontfix, started → acknowledged).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import typer

from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import INVALID, UNREACHABLE, CliError, JsonOpt, emit, print_json
from ssmd.cli.pg import ActorOpt, PgUrlOpt, actor_name, meta_session
from ssmd.model.time import format_ns

app = typer.Typer(
    help="Issue reports from agents and clients: list, show, resolve, stats; forward to "
    "the issue tracker and sync its resolution back.",
    no_args_is_help=True,
)

EnvFilterOpt = typer.Option(None, "--env", "-e", help="Only this environment.")
EnvOpt = typer.Option(
    ..., "--env", "-e", help="Environment (name or .yaml path) whose tracker to use."
)


def _when(ns: int | None) -> str:
    return "" if ns is None else format_ns(ns)[:19] + "Z"


def _what(row: dict[str, Any]) -> str:
    return f"{row['kind']}/{row['subtype']}" if row["subtype"] else row["kind"]


def _run(conn: psycopg.Connection) -> Any:
    return lambda fn: fn(conn)


def _found(conn: psycopg.Connection, issue_id: int) -> dict[str, Any]:
    from ssmd.agents import feedback

    row = feedback.get(conn, issue_id)
    if row is None:
        raise CliError(f"no feedback issue {issue_id}", INVALID, "see `ssmd feedback list --all`")
    return row


@app.command("list")
def list_cmd(
    env: str | None = EnvFilterOpt,
    status: list[str] = typer.Option(
        [], "--status", "-s", help="open, acknowledged, resolved, wontfix (repeatable)."
    ),
    show_all: bool = typer.Option(
        False, "--all", "-a", help="Every status (default: open and acknowledged)."
    ),
    kind: str | None = typer.Option(None, "--kind", "-k", help="data_quality, bug, …"),
    feed: str | None = typer.Option(None, "--feed", "-f", help="Only this feed."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many."),
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """Issues, most recently reported first: unresolved ones unless --status/--all."""
    from ssmd.agents import feedback

    bad = [s for s in status if s not in feedback.STATUSES]
    if bad:
        raise CliError(f"--status {bad[0]!r}: one of {', '.join(feedback.STATUSES)}", INVALID)
    statuses = () if show_all else (status or feedback.UNRESOLVED)
    with meta_session(pg_url) as conn:
        rows = feedback.listing(conn, env=env, statuses=statuses, kind=kind, feed=feed, limit=limit)
    table = [
        [
            r["id"],
            r["status"],
            _what(r),
            "/".join(x for x in (r["feed"], r["symbol"]) if x),
            r["count"],
            (r["tracker"] or {}).get("identifier", ""),
            r["summary"],
        ]
        for r in rows
    ]
    cols = ["id", "status", "kind", "where", "n", "tracker", "summary"]
    emit(as_json, rows, "feedback", cols, table)


@app.command()
def show(
    issue_id: int = typer.Argument(..., help="Issue id (from `ssmd feedback list`)."),
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """One issue: evidence, reporters, tracker link and state, resolution."""
    with meta_session(pg_url) as conn:
        row = _found(conn, issue_id)
    if as_json:
        print_json(row)
        return
    tracker = row["tracker"] or {}
    lines = [
        f"#{row['id']} [{row['status']}] {_what(row)}: {row['summary']}",
        f"env {row['env']}  feed {row['feed'] or '-'}  symbol {row['symbol'] or '-'}",
        f"window {_when(row['from_ns']) or '-'} → {_when(row['to_ns']) or '-'}",
        f"reports {row['count']} (first {_when(row['first_seen_ns'])}, last "
        f"{_when(row['last_seen_ns'])}) by {', '.join(row['reporters'])} via {row['source']}",
        f"fingerprint {row['fingerprint']}",
    ]
    if row["evidence"]:
        lines.append(f"evidence {row['evidence']}")
    if row["details"]:
        lines.append(f"details {row['details']}")
    if tracker:
        lines.append(
            f"tracker {tracker.get('identifier')} {tracker.get('url')} — "
            f"{tracker.get('state_name')} ({tracker.get('state_type')})"
        )
    if row["forward_error"]:
        err = row["forward_error"]
        lines.append(f"not forwarded ({err.get('attempts')} attempt(s)): {err.get('message')}")
    if row["resolution"]:
        res = row["resolution"]
        lines.append(
            f"{res['status']} by {res['by']} at {_when(res['at_ns'])}"
            + (f": {res['note']}" if res.get("note") else "")
        )
    typer.echo("\n".join(lines))


@app.command()
def resolve(
    issue_id: int = typer.Argument(..., help="Issue id."),
    status: str = typer.Option("resolved", "--status", "-s", help="resolved or wontfix."),
    note: str = typer.Option("", "--note", "-m", help="Why, for the record."),
    actor: str | None = ActorOpt,
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """Close an issue (audited as feedback.status). A forwarded issue stays as it is in the
    tracker; sync no longer changes it."""
    from ssmd.agents import feedback

    if status not in ("resolved", "wontfix"):
        raise CliError(f"--status is resolved or wontfix, not {status!r}", INVALID)
    with meta_session(pg_url) as conn:
        before = _found(conn, issue_id)
        row = feedback.set_status(conn, issue_id, status, actor=actor_name(actor), note=note)
    if as_json:
        print_json(row)
    else:
        typer.echo(f"#{issue_id}: {before['status']} → {row['status']}")


@app.command()
def stats(
    env: str | None = EnvFilterOpt, as_json: bool = JsonOpt, pg_url: str | None = PgUrlOpt
) -> None:
    """Issues and reports per kind/subtype, feed and status."""
    from ssmd.agents import feedback

    with meta_session(pg_url) as conn:
        doc = feedback.stats(conn, env)
    table = [
        [
            g["kind"],
            g["subtype"],
            g["feed"],
            g["status"],
            g["issues"],
            g["reports"],
            _when(g["last_seen_ns"]),
        ]
        for g in doc["groups"]
    ]
    title = f"feedback: {doc['issues']} issues, {doc['reports']} reports"
    emit(
        as_json,
        doc,
        title,
        ["kind", "subtype", "feed", "status", "issues", "reports", "last seen"],
        table,
    )


def _tracker_run(
    env: str, directory: Path | None, pg_url: str | None, as_json: bool, what: str, fn: Any
) -> None:
    """Run forward/sync in one session; the outcome is printed and committed before a
    failure turns into the exit code (1 refused, 3 tracker unreachable)."""
    from ssmd.agents.tracker import TrackerError

    definition = load_env(env, directory)
    name = definition.metadata.name
    spec = definition.integrations.issue_tracker
    failure: TrackerError | None = None
    with meta_session(pg_url) as conn:
        try:
            results = fn(_run(conn), name, spec)
        except TrackerError as exc:
            results, failure = [], exc
    failed = [r for r in results if r.get("error")]
    if as_json:
        print_json({"env": name, "action": what, "results": results})
    else:
        for r in results:
            typer.echo(f"#{r['id']}: " + (r.get("error") or _line(r)))
        typer.echo(f"{what}: {len(results) - len(failed)} ok, {len(failed)} failed")
    codes = {r.get("code") for r in failed} | ({failure.code} if failure else set())
    if failure or failed:
        unreachable = codes & {"unreachable", "unavailable", "ratelimited"}
        raise CliError(
            str(failure) if failure else failed[0]["error"], UNREACHABLE if unreachable else INVALID
        )


def _line(r: dict[str, Any]) -> str:
    if "external_url" in r:
        return f"filed {r['identifier']} {r['external_url']}"
    change = " (changed)" if r["changed"] else ""
    return f"{r['identifier']} {r['state_name']} → {r['status']}{change}"


@app.command()
def forward(
    env: str = EnvOpt,
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
    directory: Path = DirOpt,
) -> None:
    """File every unresolved issue not yet in the tracker (earlier failures, or reported
    before a tracker was configured). Stops at a rate limit; run again later."""
    from ssmd.agents.tracker import forward_pending

    _tracker_run(env, directory, pg_url, as_json, "forward", forward_pending)


@app.command()
def sync(
    env: str = EnvOpt,
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
    directory: Path = DirOpt,
) -> None:
    """Pull the tracker state of every forwarded unresolved issue: completed → resolved,
    canceled → wontfix, started → acknowledged (audited, actor tracker:linear)."""
    from ssmd.agents.tracker import sync as pull

    _tracker_run(env, directory, pg_url, as_json, "sync", pull)
