"""Typed issue reports from agents and people: validated, fingerprinted, stored
deduplicated, forwarded once to the issue tracker, resolved (docs/feedback.md).

Why a fingerprint: many agents hitting the same bad tick should make one issue with a
count and a list of reporters, not a hundred rows. It hashes what identifies the issue
(kind, subtype, feed, symbol, the hour the window starts in; the normalized summary for
non-data reports), never who reported it or the free text of a data report.

`intake` is the one path every entry point takes (MCP `report_issue`, `POST
/v1/feedback`): validate, check the caller may speak about the feed, store, and forward a
novel issue to the tracker (`ssmd.agents.tracker`). The rest are the table's reads and
writes used by `ssmd feedback …` and the tracker sync.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from ssmd.model.time import now_ns, parse_time

if TYPE_CHECKING:
    from ssmd.gateway.auth import Principal
    from ssmd.gateway.db import MetaPool
    from ssmd.spec.model import Environment

Kind = Literal["data_quality", "feature_request", "bug", "unknown"]
KINDS: tuple[str, ...] = ("data_quality", "feature_request", "bug", "unknown")
SUBTYPES: tuple[str, ...] = ("bad_tick", "gap", "duplicate", "stale", "schema")
STATUSES: tuple[str, ...] = ("open", "acknowledged", "resolved", "wontfix")
UNRESOLVED: tuple[str, ...] = ("open", "acknowledged")
HOUR_NS = 3600 * 10**9
MAX_SUMMARY = 200
MAX_DETAILS = 4000
MAX_NAME = 100
MAX_EVIDENCE_BYTES = 8000
MAX_NS = 2**63 - 1


class InvalidReport(ValueError):
    """A report that cannot be stored: `field` names the culprit, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def renamed(self, names: dict[str, str]) -> InvalidReport:
        """The same refusal under an entry point's own argument names (MCP: start/end)."""
        return InvalidReport(names.get(self.field, self.field), self.message)


class Report(msgspec.Struct, kw_only=True, frozen=True):
    kind: str
    summary: str
    subtype: str = ""
    details: str = ""
    feed: str = ""
    symbol: str = ""
    from_ns: int | None = None
    to_ns: int | None = None
    values: dict[str, Any] = {}


class Stored(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    fingerprint: str
    new: bool
    count: int
    status: str
    external_url: str | None = None


def _time(value: str | int | None, field: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidReport(field, str(exc)) from None


def report_from(
    *, kind: str, summary: str, subtype: str | None = None, details: str = "",
    feed: str | None = None, symbol: str | None = None, start: str | int | None = None,
    end: str | int | None = None, values: dict[str, Any] | None = None,
    names: tuple[str, str] = ("from", "to"),
) -> Report:  # fmt: skip
    """A Report from wire arguments (times as ns or ISO-8601); `names` are the window
    arguments' names at this entry point, for error messages."""
    return Report(
        kind=kind, summary=summary, subtype=subtype or "", details=details, feed=feed or "",
        symbol=symbol or "", from_ns=_time(start, names[0]), to_ns=_time(end, names[1]),
        values=values or {},
    )  # fmt: skip


def _text(field: str, value: str, most: int) -> str:
    if "\x00" in value:
        raise InvalidReport(field, "contains a NUL byte")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidReport(field, "not valid Unicode text (a lone surrogate?)") from None
    if len(value) > most:
        raise InvalidReport(field, f"at most {most} characters, got {len(value)}")
    return value


def validate(r: Report) -> Report:
    """The report, cleaned (trimmed, whitespace collapsed in the summary, symbol
    upper-cased), or InvalidReport naming the field."""
    if r.kind not in KINDS:
        raise InvalidReport("kind", f"one of {', '.join(KINDS)}, not {r.kind!r}")
    sub = r.subtype.strip()
    if r.kind == "data_quality" and sub not in SUBTYPES:
        raise InvalidReport(
            "subtype", f"a data_quality report needs one of {', '.join(SUBTYPES)}, not {sub!r}"
        )
    if r.kind != "data_quality" and sub:
        raise InvalidReport("subtype", "only for kind data_quality; leave it empty")
    summary = _text("summary", " ".join(r.summary.split()), MAX_SUMMARY)
    if not summary:
        raise InvalidReport("summary", "required: one line saying what is wrong")
    details = _text("details", r.details.strip(), MAX_DETAILS)
    feed = _text("feed", r.feed.strip(), MAX_NAME)
    symbol = _text("symbol", r.symbol.strip().upper(), MAX_NAME)
    if r.kind == "data_quality":
        missing = [f for f, v in (("feed", feed), ("symbol", symbol)) if not v]
        missing += ["from"] if r.from_ns is None else []
        if missing:
            raise InvalidReport(
                missing[0], "a data_quality report needs evidence: feed, symbol and when"
            )
    for field, ns in (("from", r.from_ns), ("to", r.to_ns)):
        if ns is not None and not 0 <= ns <= MAX_NS:
            raise InvalidReport(field, f"ns since the epoch between 0 and {MAX_NS}, got {ns}")
    if r.from_ns is not None and r.to_ns is not None and r.to_ns < r.from_ns:
        raise InvalidReport("to", "the evidence window ends before it starts")
    try:
        encoded = msgspec.json.encode(r.values)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidReport("values", f"not JSON: {exc}") from None
    if len(encoded) > MAX_EVIDENCE_BYTES:
        raise InvalidReport("values", f"at most {MAX_EVIDENCE_BYTES} bytes of JSON")
    if b"\\u0000" in encoded:
        raise InvalidReport("values", "contains a NUL character (Postgres cannot store it)")
    return msgspec.structs.replace(
        r, subtype=sub, summary=summary, details=details, feed=feed, symbol=symbol
    )


def fingerprint(env: str, r: Report) -> str:
    """Stable identity of the issue a (validated) report describes."""
    hour = "" if r.from_ns is None else str(r.from_ns // HOUR_NS)
    text = "" if r.kind == "data_quality" else r.summary.lower()
    parts = [env, r.kind, r.subtype, r.feed, r.symbol, hour, text]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def submit(
    conn: psycopg.Connection, env: str, report: Report, reporter: str, source: str = "mcp"
) -> Stored:
    """Insert the report, or count it against the issue with the same fingerprint."""
    r = validate(report)
    fp = fingerprint(env, r)
    now = now_ns()
    evidence = {"values": r.values} if r.values else {}
    row = conn.execute(
        "INSERT INTO feedback (env, fingerprint, kind, subtype, summary, details, feed, symbol,"
        " from_ns, to_ns, evidence, first_seen_ns, last_seen_ns, reporters, source)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, ARRAY[%s::text], %s)"
        " ON CONFLICT (env, fingerprint) DO UPDATE SET count = feedback.count + 1,"
        " last_seen_ns = EXCLUDED.last_seen_ns,"
        " reporters = CASE WHEN %s::text = ANY(feedback.reporters) THEN feedback.reporters"
        "   ELSE feedback.reporters || %s::text END"
        " RETURNING id, count, status, (xmax = 0), extra->'tracker'->>'url'",
        (env, fp, r.kind, r.subtype, r.summary, r.details, r.feed, r.symbol, r.from_ns,
         r.to_ns, Jsonb(evidence), now, now, reporter, source, reporter, reporter),
    ).fetchone()  # fmt: skip
    assert row is not None
    return Stored(id=row[0], fingerprint=fp, new=bool(row[3]), count=row[1], status=row[2],
                  external_url=row[4])  # fmt: skip


# -- the shared intake path ---------------------------------------------------------------


def check_access(p: Principal, feeds: Collection[str], r: Report, now: int) -> None:
    """The caller needs the `feedback` scope, and may only report on a feed (and symbol)
    it is entitled to — the gateway's own listing checks (403 AuthError otherwise)."""
    from ssmd.gateway.auth import forbidden, require_scope
    from ssmd.gateway.rest_reference import sees_feed, sees_symbol

    require_scope(p, "feedback")
    if not r.feed:
        return
    if r.feed not in feeds:
        visible = ", ".join(f for f in sorted(feeds) if sees_feed(p, f, now)) or "none"
        raise InvalidReport("feed", f"no feed {r.feed!r} in this environment; yours: {visible}")
    if r.symbol and not sees_symbol(p, r.feed, r.symbol, now):
        raise forbidden(
            "not_entitled",
            f"client {p.client_id!r} is not entitled to feed {r.feed!r} symbol {r.symbol!r}: "
            "report only on data your key may read",
        )
    if not sees_feed(p, r.feed, now):
        raise forbidden("not_entitled", f"client {p.client_id!r} is not entitled to feed "
                        f"{r.feed!r}: report only on data your key may read")  # fmt: skip


def intake(
    pool: MetaPool, definition: Environment, p: Principal, report: Report, source: str
) -> dict[str, Any]:
    """Validate, authorize, store (deduplicated) and, for a novel issue, forward it to the
    definition's tracker. A forwarding failure never loses the report: it is recorded on
    the row and retried by `ssmd feedback forward`. Raises InvalidReport or AuthError."""
    from ssmd.agents import tracker

    r = validate(report)
    check_access(p, definition.feeds, r, now_ns())
    env = definition.metadata.name
    stored = pool.run_sync(lambda c: submit(c, env, r, f"client:{p.client_id}", source))
    url = stored.external_url
    if stored.new:
        url = tracker.forward_new(pool.run_sync, env, definition.integrations.issue_tracker,
                                  stored.id)  # fmt: skip
    return {"id": stored.id, "fingerprint": stored.fingerprint, "new": stored.new,
            "count": stored.count, "status": stored.status, "external_url": url}  # fmt: skip


# -- reads --------------------------------------------------------------------------------

_COLS = (
    "id, kind, subtype, summary, feed, symbol, from_ns, to_ns, status, count, "
    "first_seen_ns, last_seen_ns, fingerprint"
)
_ALL = (
    "id, env, kind, subtype, summary, details, feed, symbol, from_ns, to_ns, evidence, "
    "status, count, first_seen_ns, last_seen_ns, reporters, source, fingerprint, "
    "external_ref, extra"
)


def open_issues(
    conn: psycopg.Connection, env: str, feed: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Unresolved reports (open or acknowledged), most recently seen first."""
    rows = conn.execute(
        f"SELECT {_COLS} FROM feedback WHERE env = %s AND status IN ('open', 'acknowledged')"
        " AND (%s::text IS NULL OR feed = %s) ORDER BY last_seen_ns DESC LIMIT %s",
        (env, feed, feed, limit),
    ).fetchall()
    names = [c.strip() for c in _COLS.split(",")]
    return [dict(zip(names, r, strict=True)) for r in rows]


def _view(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row as a document: the tracker link, forwarding error and resolution lifted out
    of `extra` so readers need not know its layout."""
    doc = dict(zip([c.strip() for c in _ALL.split(",")], row, strict=True))
    extra = doc.pop("extra") or {}
    tracker = extra.get("tracker")
    doc["external_url"] = tracker.get("url") if tracker else None
    doc["tracker"] = tracker
    doc["forward_error"] = extra.get("forward_error")
    doc["resolution"] = extra.get("resolution")
    return doc


def get(conn: psycopg.Connection, issue_id: int) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_ALL} FROM feedback WHERE id = %s", (issue_id,)).fetchone()
    return None if row is None else _view(row)


def listing(
    conn: psycopg.Connection, *, env: str | None = None, statuses: Collection[str] = (),
    kind: str | None = None, feed: str | None = None, limit: int = 50,
) -> list[dict[str, Any]]:  # fmt: skip
    """Issues, most recently seen first; empty `statuses` means every status."""
    rows = conn.execute(
        f"SELECT {_ALL} FROM feedback WHERE (%(env)s::text IS NULL OR env = %(env)s)"
        " AND (cardinality(%(st)s::text[]) = 0 OR status = ANY(%(st)s::text[]))"
        " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
        " AND (%(feed)s::text IS NULL OR feed = %(feed)s)"
        " ORDER BY last_seen_ns DESC, id DESC LIMIT %(limit)s",
        {"env": env, "st": list(statuses), "kind": kind, "feed": feed, "limit": limit},
    ).fetchall()
    return [_view(r) for r in rows]


def stats(conn: psycopg.Connection, env: str | None = None) -> dict[str, Any]:
    """Issues and reports per (kind, subtype, feed, status), with totals per dimension."""
    rows = conn.execute(
        "SELECT kind, subtype, feed, status, count(*), sum(count), min(first_seen_ns),"
        " max(last_seen_ns) FROM feedback WHERE (%(env)s::text IS NULL OR env = %(env)s)"
        " GROUP BY kind, subtype, feed, status ORDER BY kind, subtype, feed, status",
        {"env": env},
    ).fetchall()
    groups = [
        {"kind": k, "subtype": s, "feed": f, "status": st, "issues": n, "reports": int(c),
         "first_seen_ns": lo, "last_seen_ns": hi}
        for k, s, f, st, n, c, lo, hi in rows
    ]  # fmt: skip

    def per(key: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for g in groups:
            t = out.setdefault(g[key], {"issues": 0, "reports": 0})
            t["issues"] += g["issues"]
            t["reports"] += g["reports"]
        return out

    return {"env": env, "issues": sum(g["issues"] for g in groups),
            "reports": sum(g["reports"] for g in groups), "by_kind": per("kind"),
            "by_subtype": per("subtype"), "by_feed": per("feed"), "by_status": per("status"),
            "groups": groups}  # fmt: skip


def unforwarded(conn: psycopg.Connection, env: str, settled_ns: int) -> list[dict[str, Any]]:
    """Unresolved issues without a tracker link that a forward should (re)try: those whose
    attempt failed, and those first seen before `settled_ns` (never attempted: no tracker
    configured then, or the process died) — not ones an intake is forwarding right now."""
    rows = conn.execute(
        f"SELECT {_ALL} FROM feedback WHERE env = %s AND external_ref IS NULL"
        " AND status IN ('open', 'acknowledged')"
        " AND (extra ? 'forward_error' OR first_seen_ns < %s) ORDER BY id",
        (env, settled_ns),
    ).fetchall()
    return [_view(r) for r in rows]


def linked_unresolved(conn: psycopg.Connection, env: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {_ALL} FROM feedback WHERE env = %s AND external_ref IS NOT NULL"
        " AND status IN ('open', 'acknowledged') ORDER BY id",
        (env,),
    ).fetchall()
    return [_view(r) for r in rows]


# -- writes -------------------------------------------------------------------------------


def link(conn: psycopg.Connection, issue_id: int, ref: str, tracker: dict[str, Any]) -> None:
    """Keep the tracker issue of a forwarded report; clears an earlier forwarding error."""
    conn.execute(
        "UPDATE feedback SET external_ref = %s,"
        " extra = (extra - 'forward_error') || jsonb_build_object('tracker', %s::jsonb)"
        " WHERE id = %s",
        (ref, Jsonb(tracker), issue_id),
    )


def forward_failed(conn: psycopg.Connection, issue_id: int, error: dict[str, Any]) -> None:
    """Record why forwarding failed (counting attempts), so a retry knows to run."""
    conn.execute(
        "UPDATE feedback SET extra = extra || jsonb_build_object('forward_error',"
        " %s::jsonb || jsonb_build_object('attempts',"
        "   COALESCE((extra->'forward_error'->>'attempts')::int, 0) + 1))"
        " WHERE id = %s",
        (Jsonb(error), issue_id),
    )


def set_status(
    conn: psycopg.Connection, issue_id: int, status: str, *, actor: str, note: str = "",
    source: str = "cli", tracker: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Change an issue's status (audited as `feedback.status`); returns the issue after.
    `tracker`, when given, replaces the stored tracker state (a sync)."""
    from ssmd.meta import audit

    if status not in STATUSES:
        raise InvalidReport("status", f"one of {', '.join(STATUSES)}, not {status!r}")
    before = get(conn, issue_id)
    if before is None:
        raise LookupError(f"no feedback issue {issue_id}")
    now = now_ns()
    resolution = {"status": status, "note": note, "by": actor, "source": source, "at_ns": now}
    patch: dict[str, Any] = {"resolution": resolution}
    if tracker is not None:
        patch["tracker"] = tracker
    conn.execute(
        "UPDATE feedback SET status = %s, extra = extra || %s::jsonb WHERE id = %s",
        (status, Jsonb(patch), issue_id),
    )
    audit.append(conn, actor, "feedback.status", f"feedback/{issue_id}",
                 {"env": before["env"], "from": before["status"], "to": status, "note": note,
                  "source": source, "fingerprint": before["fingerprint"]})  # fmt: skip
    after = get(conn, issue_id)
    assert after is not None
    return after


def set_tracker(conn: psycopg.Connection, issue_id: int, tracker: dict[str, Any]) -> None:
    """Refresh the stored tracker state without a status change."""
    conn.execute(
        "UPDATE feedback SET extra = extra || jsonb_build_object('tracker', %s::jsonb)"
        " WHERE id = %s",
        (Jsonb(tracker), issue_id),
    )
