"""Typed issue reports (`report_issue`), validated, fingerprinted and stored deduplicated.

Why a fingerprint: many agents hitting the same bad tick should make one issue with a
count and a list of reporters, not a hundred rows. It hashes what identifies the issue
(kind, subtype, feed, symbol, the hour the window starts in; the normalized summary for
non-data reports), never who reported it or the free text of a data report.
The full loop (tracker forwarding, resolution flowing back) builds on this table.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from ssmd.model.time import now_ns

Kind = Literal["data_quality", "feature_request", "bug", "unknown"]
KINDS: tuple[str, ...] = ("data_quality", "feature_request", "bug", "unknown")
SUBTYPES: tuple[str, ...] = ("bad_tick", "gap", "duplicate", "stale", "schema")
HOUR_NS = 3600 * 10**9
MAX_SUMMARY = 200
MAX_DETAILS = 4000
MAX_EVIDENCE_BYTES = 8000


class InvalidReport(ValueError):
    """A report that cannot be stored; the message says which field and why."""


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


def validate(r: Report) -> Report:
    """The report, cleaned (trimmed, symbol upper-cased), or InvalidReport."""
    if r.kind not in KINDS:
        raise InvalidReport(f"kind must be one of {', '.join(KINDS)}, not {r.kind!r}")
    sub = r.subtype.strip()
    if r.kind == "data_quality" and sub not in SUBTYPES:
        raise InvalidReport(f"a data_quality report needs subtype one of {', '.join(SUBTYPES)}")
    if r.kind != "data_quality" and sub:
        raise InvalidReport("subtype is only for kind data_quality")
    summary = " ".join(r.summary.split())
    if not summary:
        raise InvalidReport("summary is required: one line saying what is wrong")
    if len(summary) > MAX_SUMMARY:
        raise InvalidReport(f"summary is at most {MAX_SUMMARY} characters")
    if len(r.details) > MAX_DETAILS:
        raise InvalidReport(f"details is at most {MAX_DETAILS} characters")
    if r.kind == "data_quality" and not (r.feed and r.symbol and r.from_ns is not None):
        raise InvalidReport("a data_quality report needs evidence: feed, symbol and from")
    if r.from_ns is not None and r.to_ns is not None and r.to_ns < r.from_ns:
        raise InvalidReport("the evidence window ends before it starts")
    if len(msgspec.json.encode(r.values)) > MAX_EVIDENCE_BYTES:
        raise InvalidReport(f"values is at most {MAX_EVIDENCE_BYTES} bytes of JSON")
    return msgspec.structs.replace(
        r, subtype=sub, summary=summary, details=r.details.strip(),
        feed=r.feed.strip(), symbol=r.symbol.strip().upper(),
    )  # fmt: skip


def fingerprint(env: str, r: Report) -> str:
    """Stable identity of the issue a (validated) report describes."""
    hour = "" if r.from_ns is None else str(r.from_ns // HOUR_NS)
    text = "" if r.kind == "data_quality" else r.summary.lower()
    parts = [env, r.kind, r.subtype, r.feed, r.symbol, hour, text]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def submit(
    conn: psycopg.Connection, env: str, report: Report, reporter: str, source: str = "mcp"
) -> Stored:
    """Insert the report, or count it against the open issue with the same fingerprint."""
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
        " RETURNING id, count, status, (xmax = 0)",
        (env, fp, r.kind, r.subtype, r.summary, r.details, r.feed, r.symbol, r.from_ns,
         r.to_ns, Jsonb(evidence), now, now, reporter, source, reporter, reporter),
    ).fetchone()  # fmt: skip
    assert row is not None
    return Stored(id=row[0], fingerprint=fp, new=bool(row[3]), count=row[1], status=row[2])


_COLS = (
    "id, kind, subtype, summary, feed, symbol, from_ns, to_ns, status, count, "
    "first_seen_ns, last_seen_ns, fingerprint"
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
