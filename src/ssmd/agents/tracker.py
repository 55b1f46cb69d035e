"""Forwarding feedback to the issue tracker of the definition (Linear) and pulling the
resolution back (docs/feedback.md).

Linear's API is one GraphQL endpoint (https://linear.app/developers/graphql): a POST of
JSON `{query, variables}`, a personal API key sent as `Authorization: <key>` (no
"Bearer": that form is for OAuth tokens). Failures come back as a GraphQL `errors` array
whose `extensions` carry `type` ("authentication error", "ratelimited", "invalid input",
…) and `code` (AUTHENTICATION_ERROR, RATELIMITED, …), with HTTP 200 or 400; a rate limit
may also be HTTP 429, with `Retry-After` / `X-RateLimit-Requests-Reset`. Every one
becomes a `TrackerError` saying what failed and what to do.

Why a deterministic issue id: `issueCreate` accepts a client-chosen UUID (`input.id`).
Ours is derived from the environment and the fingerprint, so a retry after a lost answer
finds the issue the first attempt made (`issue(id:)`) instead of filing it twice.

The endpoint is $SSMD_LINEAR_URL when set (tests point it at a local contract server),
else https://api.linear.app/graphql.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import httpx
import msgspec
import psycopg

from ssmd import __version__
from ssmd.agents import feedback
from ssmd.model.time import format_ns, now_ns
from ssmd.spec.model import IssueTracker

log = logging.getLogger("ssmd.feedback")

LINEAR_URL = "https://api.linear.app/graphql"
URL_ENV = "SSMD_LINEAR_URL"
TIMEOUT_S = 5.0
"""Per request: an intake waits for the tracker, so a slow tracker must not hold it long."""
SETTLED_NS = 60 * 10**9
"""An issue with no link and no recorded failure is retried once this old (the intake
that stored it is surely done with it)."""

STATUS_OF_STATE = {
    "triage": "open",
    "backlog": "open",
    "unstarted": "open",
    "started": "acknowledged",
    "completed": "resolved",
    "canceled": "wontfix",
}
"""Linear workflow state type → our status."""

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

TEAMS = """query SsmdTeam($key: String!) {
  teams(filter: {key: {eq: $key}}) { nodes { id key name } }
}"""
LABELS = """query SsmdLabels($names: [String!]!) {
  issueLabels(filter: {name: {in: $names}}) { nodes { id name team { id } } }
}"""
ISSUE_CREATE = """mutation SsmdIssueCreate($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier url state { type name } } }
}"""
ISSUE = """query SsmdIssue($id: String!) {
  issue(id: $id) { id identifier url state { type name } }
}"""

T = TypeVar("T")
Run = Callable[[Callable[[psycopg.Connection], T]], T]
"""Runs fn(conn) in a transaction (MetaPool.run_sync, or a CLI session)."""


class TrackerError(Exception):
    """The tracker refused or could not be reached; `code` is stable (authentication,
    ratelimited, unreachable, unavailable, config, not_found, graphql, http), the message
    says what to do."""

    def __init__(self, message: str, code: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after

    def doc(self) -> dict[str, Any]:
        return {
            "message": str(self),
            "code": self.code,
            "retry_after": self.retry_after,
            "at_ns": now_ns(),
        }


class LinearIssue(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    identifier: str
    url: str
    state_type: str = ""
    state_name: str = ""

    def doc(self) -> dict[str, Any]:
        return {
            "kind": "linear",
            "id": self.id,
            "identifier": self.identifier,
            "url": self.url,
            "state_type": self.state_type,
            "state_name": self.state_name,
            "synced_ns": now_ns(),
        }


def _issue(node: Mapping[str, Any]) -> LinearIssue:
    state = node.get("state") or {}
    return LinearIssue(
        id=node["id"],
        identifier=node["identifier"],
        url=node["url"],
        state_type=state.get("type", ""),
        state_name=state.get("name", ""),
    )


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


class Linear:
    """A small Linear GraphQL client: team and label lookup, issueCreate, issue state."""

    def __init__(
        self,
        api_key: str,
        *,
        team: str,
        labels: Sequence[str] = (),
        url: str | None = None,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.url = url or os.environ.get(URL_ENV) or LINEAR_URL
        self.team = team
        self.labels = tuple(labels)
        self._http = httpx.Client(
            timeout=timeout,
            headers={
                "Authorization": api_key,
                "Content-Type": "application/json",
                "User-Agent": f"ssmd/{__version__}",
            },
        )
        self._team_id: str | None = None
        self._label_ids: list[str] | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Linear:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """`data` of one GraphQL request, or TrackerError."""
        body = json.dumps({"query": query, "variables": variables})
        try:
            resp = self._http.post(self.url, content=body)
        except httpx.HTTPError as exc:
            raise TrackerError(f"Linear unreachable at {self.url}: {exc}", "unreachable") from None
        retry = _seconds(resp.headers.get("retry-after"))
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if resp.status_code == 429 or (errors and _code(errors[0]) == "RATELIMITED"):
            reset = resp.headers.get("x-ratelimit-requests-reset")
            raise TrackerError(
                f"Linear rate limit reached (HTTP {resp.status_code})"
                + (f"; requests reset at {reset} ms since the epoch" if reset else "")
                + "; `ssmd feedback forward` retries later",
                "ratelimited",
                retry_after=retry,
            )
        if errors:
            raise _graphql_error(errors[0], resp.status_code)
        if resp.status_code >= 400 or not isinstance(doc, dict) or doc.get("data") is None:
            raise TrackerError(
                f"Linear answered HTTP {resp.status_code} without data: {resp.text[:200]!r}",
                "http",
            )
        return doc["data"]  # type: ignore[no-any-return]

    def team_id(self) -> str:
        """The team's id: the definition may give it, or the team key (e.g. MD)."""
        if self._team_id is None:
            if _UUID.match(self.team):
                self._team_id = self.team
            else:
                nodes = self.request(TEAMS, {"key": self.team})["teams"]["nodes"]
                if not nodes:
                    raise TrackerError(
                        f"no Linear team with key {self.team!r} visible to this API key: fix "
                        "integrations.issue_tracker.team (the key shown in issue ids, e.g. MD)",
                        "config",
                    )
                self._team_id = nodes[0]["id"]
        return self._team_id

    def label_ids(self) -> list[str]:
        """Ids of the definition's label names (workspace labels or the team's)."""
        if self._label_ids is None:
            ids: dict[str, str] = {}
            if self.labels:
                team = self.team_id()
                nodes = self.request(LABELS, {"names": list(self.labels)})["issueLabels"]["nodes"]
                for n in nodes:
                    if n.get("team") is None or n["team"].get("id") == team:
                        ids.setdefault(n["name"], n["id"])
                missing = [name for name in self.labels if name not in ids]
                if missing:
                    raise TrackerError(
                        f"Linear has no label {', '.join(map(repr, missing))} for team "
                        f"{self.team!r}: create it in Linear or remove it from "
                        "integrations.issue_tracker.labels",
                        "config",
                    )
            self._label_ids = [ids[name] for name in self.labels]
        return self._label_ids

    def create_issue(self, *, issue_id: str, title: str, description: str) -> LinearIssue:
        payload: dict[str, Any] = {
            "id": issue_id,
            "teamId": self.team_id(),
            "title": title,
            "description": description,
        }
        labels = self.label_ids()
        if labels:
            payload["labelIds"] = labels
        out = self.request(ISSUE_CREATE, {"input": payload})["issueCreate"]
        if not out.get("success") or not out.get("issue"):
            raise TrackerError("Linear issueCreate answered success=false", "graphql")
        return _issue(out["issue"])

    def issue(self, ref: str) -> LinearIssue | None:
        """The issue (id or identifier like MD-12) with its state; None if Linear has none."""
        try:
            node = self.request(ISSUE, {"id": ref})["issue"]
        except TrackerError as exc:
            if exc.code == "not_found":
                return None
            raise
        return None if node is None else _issue(node)


def _code(error: Mapping[str, Any]) -> str:
    ext = error.get("extensions") or {}
    code = str(ext.get("code") or "").upper()
    kind = str(ext.get("type") or "").lower()
    if code == "RATELIMITED" or kind == "ratelimited":
        return "RATELIMITED"
    if code == "AUTHENTICATION_ERROR" or kind == "authentication error":
        return "AUTHENTICATION_ERROR"
    return code or kind.upper().replace(" ", "_")


def _graphql_error(error: Mapping[str, Any], status: int) -> TrackerError:
    ext = error.get("extensions") or {}
    text = ext.get("userPresentableMessage") or error.get("message") or "unknown error"
    code = _code(error)
    if code == "AUTHENTICATION_ERROR":
        return TrackerError(
            f"Linear refused the API key: {text} — check integrations.issue_tracker.api_key "
            "(a personal API key from Linear's Security & access settings)",
            "authentication",
        )
    if str(error.get("message", "")).startswith("Entity not found"):
        return TrackerError(f"Linear: {error.get('message')}", "not_found")
    return TrackerError(
        f"Linear GraphQL error ({code or 'no code'}, HTTP {status}): {text}",
        "unavailable" if status >= 500 else "graphql",
    )


def linear_for(spec: IssueTracker | None, environ: Mapping[str, str] | None = None) -> Linear:
    """The client for the definition's tracker; TrackerError (config) when there is none,
    it is not Linear, or its API key reference does not resolve."""
    from ssmd.storage.secrets import SecretError, resolve_secret

    if spec is None:
        raise TrackerError(
            "no issue tracker configured: add integrations.issue_tracker (kind linear, "
            "api_key, team) to the environment definition",
            "config",
        )
    if spec.kind != "linear":
        raise TrackerError(
            f"issue tracker kind {spec.kind!r} is not supported yet (linear is)", "config"
        )
    if not spec.team:
        raise TrackerError(
            "integrations.issue_tracker.team is empty: set the Linear team key", "config"
        )
    try:
        key = resolve_secret(
            spec.api_key, field="integrations.issue_tracker.api_key", environ=environ
        )
    except SecretError as exc:
        raise TrackerError(f"{exc} ({exc.hint})" if exc.hint else str(exc), "config") from None
    return Linear(key, team=spec.team, labels=spec.labels)


# -- what an issue says -------------------------------------------------------------------


def issue_uuid(env: str, fingerprint: str) -> str:
    """The Linear issue id for one of our issues: a UUID v4 in form, derived, not random."""
    digest = hashlib.sha256(f"ssmd-feedback\x1f{env}\x1f{fingerprint}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def title(row: Mapping[str, Any]) -> str:
    kind = f"{row['kind']}/{row['subtype']}" if row["subtype"] else row["kind"]
    where = " ".join(x for x in (row["feed"], row["symbol"]) if x)
    return f"[ssmd {row['env']}] {kind}: {row['summary']}" + (f" ({where})" if where else "")


def description(row: Mapping[str, Any]) -> str:
    """Markdown: the evidence and how to follow the issue from ssmd."""
    lines = [
        f"Reported to ssmd (environment `{row['env']}`) as feedback #{row['id']}, "
        f"fingerprint `{row['fingerprint']}`.",
        "",
        f"- **Kind:** {row['kind']}" + (f" / {row['subtype']}" if row["subtype"] else ""),
    ]
    if row["feed"]:
        lines.append(f"- **Feed / symbol:** {row['feed']} / {row['symbol'] or '-'}")
    if row["from_ns"] is not None:
        end = format_ns(row["to_ns"]) if row["to_ns"] is not None else "…"
        lines.append(f"- **Window:** {format_ns(row['from_ns'])} → {end}")
    lines.append(
        f"- **Reports:** {row['count']}, first seen {format_ns(row['first_seen_ns'])}"
        f", by {', '.join(row['reporters'])}"
    )
    values = (row["evidence"] or {}).get("values")
    if values:
        lines += ["", "Evidence values:", "", "```json", json.dumps(values, indent=2), "```"]
    if row["details"]:
        lines += ["", row["details"]]
    lines += [
        "",
        f"Follow it with `ssmd feedback show {row['id']}`; its status comes back "
        f"with `ssmd feedback sync --env {row['env']}`.",
    ]
    return "\n".join(lines)


# -- forwarding and sync ------------------------------------------------------------------


def forward(run: Run[Any], row: Mapping[str, Any], linear: Linear, *, retry: bool) -> LinearIssue:
    """File one stored issue in Linear and keep the link. On a retry, an issue an earlier
    attempt created (same derived id) is adopted instead of filed again."""
    uid = issue_uuid(row["env"], row["fingerprint"])
    found = linear.issue(uid) if retry else None
    issue = found or linear.create_issue(
        issue_id=uid, title=title(row), description=description(row)
    )
    run(lambda c: feedback.link(c, row["id"], issue.id, issue.doc()))
    return issue


def forward_new(run: Run[Any], env: str, spec: IssueTracker | None, issue_id: int) -> str | None:
    """Forward a just-stored novel issue; its URL, or None (no tracker, or a failure —
    recorded on the row for `ssmd feedback forward`, never raised)."""
    if spec is None:
        return None
    try:
        row = run(lambda c: feedback.get(c, issue_id))
        assert row is not None
        with linear_for(spec) as linear:
            return forward(run, row, linear, retry=False).url
    except TrackerError as exc:
        log.warning("feedback not forwarded", extra={"env": env, "id": issue_id, "error": str(exc)})
        error = exc.doc()
    run(lambda c: feedback.forward_failed(c, issue_id, error))
    return None


STOP = frozenset({"ratelimited", "unreachable", "unavailable", "authentication", "config"})
"""Failures that would fail every next issue as well: a batch stops at them."""


def forward_pending(run: Run[Any], env: str, spec: IssueTracker | None) -> list[dict[str, Any]]:
    """(Re)try every unforwarded unresolved issue; one result per issue. Stops at a rate
    limit, an unreachable tracker or a refused key (the rest wait for the next run)."""
    out: list[dict[str, Any]] = []
    with linear_for(spec) as linear:
        for row in run(lambda c: feedback.unforwarded(c, env, now_ns() - SETTLED_NS)):
            try:
                issue = forward(run, row, linear, retry=True)
            except TrackerError as exc:
                run(partial(feedback.forward_failed, issue_id=row["id"], error=exc.doc()))
                out.append({"id": row["id"], "code": exc.code, "error": str(exc)})
                if exc.code in STOP:
                    break
                continue
            out.append({"id": row["id"], "identifier": issue.identifier, "external_url": issue.url})
    return out


def sync(run: Run[Any], env: str, spec: IssueTracker | None) -> list[dict[str, Any]]:
    """Pull the state of every linked unresolved issue from Linear; a state type that maps
    to another status changes ours (audited, actor `tracker:linear`). Like a forward, it
    stops at a rate limit, a refused key or an unreachable tracker."""
    out: list[dict[str, Any]] = []
    with linear_for(spec) as linear:
        for row in run(lambda c: feedback.linked_unresolved(c, env)):
            try:
                issue = linear.issue(row["external_ref"])
            except TrackerError as exc:
                out.append({"id": row["id"], "code": exc.code, "error": str(exc)})
                if exc.code in STOP:
                    break
                continue
            if issue is None:
                error = f"Linear has no issue {row['external_ref']} (deleted there?)"
                out.append({"id": row["id"], "code": "not_found", "error": error})
                continue
            status = STATUS_OF_STATE.get(issue.state_type, row["status"])
            if status == row["status"]:
                run(partial(feedback.set_tracker, issue_id=row["id"], tracker=issue.doc()))
            else:
                note = f"Linear {issue.identifier} is {issue.state_name} ({issue.state_type})"
                change = partial(
                    feedback.set_status,
                    issue_id=row["id"],
                    status=status,
                    actor="tracker:linear",
                    note=note,
                    source="tracker",
                    tracker=issue.doc(),
                )
                run(change)
            out.append(
                {
                    "id": row["id"],
                    "identifier": issue.identifier,
                    "state_type": issue.state_type,
                    "state_name": issue.state_name,
                    "status": status,
                    "changed": status != row["status"],
                }
            )
    return out
