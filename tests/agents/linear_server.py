"""A local HTTP server implementing the part of Linear's GraphQL API that ssmd uses, so the
tracker integration is tested over real HTTP against the documented contract (Linear
itself cannot be reached from the tests).

What it follows:
- https://linear.app/developers/graphql — one endpoint, `POST` with
  `Content-Type: application/json` and a JSON body `{"query", "variables"}`; a personal API
  key is sent as `Authorization: <API_KEY>` (OAuth tokens as `Bearer <token>`, which a
  personal key is not); answers are `{"data": …}` or `{"errors": [...]}`.
- The schema (github.com/linear/linear, packages/sdk/src/schema.graphql): the subset in
  `SDL` below with Linear's field and type names — `issueCreate(input: IssueCreateInput!):
  IssuePayload!`, `issue(id: String!): Issue!`, `teams(filter: TeamFilter)`,
  `issueLabels(filter: IssueLabelFilter)`, `WorkflowState.type` (triage, backlog,
  unstarted, started, completed, canceled). Queries are parsed and validated against it
  with graphql-core, so a misspelt field fails here as it would at Linear
  (GRAPHQL_VALIDATION_FAILED, HTTP 400).
- Errors as the Linear SDK parses them (packages/sdk/src/error.ts): each error's
  `extensions` has `type` ("authentication error", "ratelimited", "invalid input", …),
  `code`, `userError`, `userPresentableMessage`. A missing or wrong key is HTTP 400 with
  type "authentication error" / code AUTHENTICATION_ERROR; a rate limit is RATELIMITED
  with the `X-RateLimit-Requests-*` headers (https://linear.app/developers/rate-limiting),
  as HTTP 400 or, for the status-code form, 429 with Retry-After.
- Unknown ids: "Entity not found: Issue" (type "invalid input", code INPUT_ERROR).

Tests inspect `requests` (what arrived: headers and JSON body), change an issue's state
with `set_state` (someone closing it in Linear), and queue failures with `fail_next`.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from graphql import GraphQLError, build_schema, graphql_sync

SDL = """
type Query {
  issue(id: String!): Issue!
  teams(filter: TeamFilter, first: Int): TeamConnection!
  issueLabels(filter: IssueLabelFilter, first: Int): IssueLabelConnection!
}
type Mutation {
  issueCreate(input: IssueCreateInput!): IssuePayload!
}
input StringComparator { eq: String, neq: String, in: [String!], nin: [String!] }
input TeamFilter { key: StringComparator, name: StringComparator }
input IssueLabelFilter { name: StringComparator }
input IssueCreateInput {
  id: String
  title: String
  description: String
  teamId: String!
  labelIds: [String!]
  priority: Int
  stateId: String
}
type Team { id: ID!, key: String!, name: String! }
type TeamConnection { nodes: [Team!]! }
type IssueLabel { id: ID!, name: String!, team: Team }
type IssueLabelConnection { nodes: [IssueLabel!]! }
type WorkflowState { id: ID!, name: String!, type: String! }
type Issue {
  id: ID!
  identifier: String!
  number: Float!
  title: String!
  description: String
  url: String!
  team: Team!
  state: WorkflowState!
  labelIds: [String!]!
}
type IssuePayload { lastSyncId: Float!, success: Boolean!, issue: Issue }
"""
SCHEMA = build_schema(SDL)
AUTH_ERROR = {
    "message": "Authentication required, not authenticated",
    "extensions": {
        "type": "authentication error",
        "code": "AUTHENTICATION_ERROR",
        "statusCode": 401,
        "userError": True,
        "userPresentableMessage": "You need to authenticate to access this operation.",
    },
}
RATELIMITED = {
    "message": "Rate limit exceeded",
    "extensions": {
        "type": "ratelimited",
        "code": "RATELIMITED",
        "statusCode": 429,
        "userError": True,
        "userPresentableMessage": "Too many requests: the API key's request budget is spent.",
    },
}


def _error(message: str, type_: str, code: str, user: str) -> GraphQLError:
    ext = {"type": type_, "code": code, "userError": True, "userPresentableMessage": user}
    return GraphQLError(message, extensions=ext)


class LinearServer:
    """`with LinearServer("lin_api_…") as srv:` serves at `srv.url` in a thread."""

    def __init__(self, api_key: str, team_key: str = "MD") -> None:
        self.api_key = api_key
        self.team = {"id": str(uuid.uuid4()), "key": team_key, "name": "Market Data"}
        self.labels = [{"id": str(uuid.uuid4()), "name": "ssmd", "team": None}]
        self.issues: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self._failures: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._http.server_port}/graphql"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> LinearServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)

    # -- test controls ------------------------------------------------------------------

    def fail_next(self, kind: str, status: int = 400, times: int = 1) -> None:
        """The next `times` requests fail: kind ratelimited (status 400 or 429) or
        internal (HTTP 500, INTERNAL_ERROR)."""
        with self._lock:
            self._failures += [(kind, status)] * times

    def set_state(self, identifier: str, type_: str, name: str) -> None:
        with self._lock:
            issue = next(i for i in self.issues.values() if i["identifier"] == identifier)
            issue["state"] = {"id": str(uuid.uuid4()), "type": type_, "name": name}

    def bodies(self, operation: str) -> list[dict[str, Any]]:
        """JSON bodies of the requests whose query contains `operation`."""
        return [r["body"] for r in self.requests if operation in r["body"].get("query", "")]

    # -- resolvers ----------------------------------------------------------------------

    def _find(self, ref: str) -> dict[str, Any] | None:
        return self.issues.get(ref) or next(
            (i for i in self.issues.values() if i["identifier"] == ref), None
        )

    def _issue(self, info: Any, id: str) -> dict[str, Any]:
        found = self._find(id)
        if found is None:
            raise _error(
                "Entity not found: Issue",
                "invalid input",
                "INPUT_ERROR",
                "Could not find referenced Issue.",
            )
        return found

    def _teams(self, info: Any, filter: Any = None, first: Any = None) -> dict[str, Any]:
        key = ((filter or {}).get("key") or {}).get("eq")
        return {"nodes": [self.team] if key in (None, self.team["key"]) else []}

    def _labels(self, info: Any, filter: Any = None, first: Any = None) -> dict[str, Any]:
        names = ((filter or {}).get("name") or {}).get("in")
        return {"nodes": [lb for lb in self.labels if names is None or lb["name"] in names]}

    def _create(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        if input["teamId"] != self.team["id"]:
            raise _error(
                "Entity not found: Team",
                "invalid input",
                "INPUT_ERROR",
                "Could not find referenced Team.",
            )
        issue_id = input.get("id") or str(uuid.uuid4())
        if issue_id in self.issues:
            raise _error(
                "Entity already exists",
                "invalid input",
                "INPUT_ERROR",
                "An issue with this id already exists.",
            )
        known = {lb["id"] for lb in self.labels}
        if any(label not in known for label in input.get("labelIds") or []):
            raise _error(
                "Entity not found: IssueLabel",
                "invalid input",
                "INPUT_ERROR",
                "Could not find referenced IssueLabel.",
            )
        number = len(self.issues) + 1
        identifier = f"{self.team['key']}-{number}"
        issue = {
            "id": issue_id,
            "identifier": identifier,
            "number": number,
            "title": input.get("title") or "",
            "description": input.get("description"),
            "url": f"https://linear.app/ssmd-test/issue/{identifier.lower()}",
            "team": self.team,
            "labelIds": input.get("labelIds") or [],
            "state": {"id": str(uuid.uuid4()), "type": "triage", "name": "Triage"},
        }
        self.issues[issue_id] = issue
        return {"lastSyncId": float(number), "success": True, "issue": issue}

    # -- HTTP ---------------------------------------------------------------------------

    def answer(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        """(status, extra headers, JSON body) for one POST."""
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if headers.get("authorization") != self.api_key:
            return 400, {}, {"errors": [AUTH_ERROR]}
        if failure is not None:
            kind, status = failure
            if kind == "ratelimited":
                limits = {
                    "X-RateLimit-Requests-Limit": "1500",
                    "X-RateLimit-Requests-Remaining": "0",
                    "X-RateLimit-Requests-Reset": "1893456000000",
                    "Retry-After": "30",
                }
                return status, limits, {"errors": [RATELIMITED]}
            return (
                500,
                {},
                {
                    "errors": [
                        {
                            "message": "Internal server error",
                            "extensions": {"type": "internal error", "code": "INTERNAL_ERROR"},
                        }
                    ]
                },
            )
        if not headers.get("content-type", "").startswith("application/json"):
            return (
                400,
                {},
                {
                    "errors": [
                        {
                            "message": "Content-Type must be application/json",
                            "extensions": {"type": "invalid input", "code": "BAD_REQUEST"},
                        }
                    ]
                },
            )
        try:
            body = json.loads(raw)
            query, variables = body["query"], body.get("variables") or {}
            assert isinstance(query, str) and isinstance(variables, dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            return (
                400,
                {},
                {
                    "errors": [
                        {
                            "message": "POST body must be JSON {query, variables}",
                            "extensions": {"type": "invalid input", "code": "BAD_REQUEST"},
                        }
                    ]
                },
            )
        root = {
            "issue": self._issue,
            "teams": self._teams,
            "issueLabels": self._labels,
            "issueCreate": self._create,
        }
        with self._lock:
            result = graphql_sync(SCHEMA, query, root_value=root, variable_values=variables)
        if result.errors and result.data is None:
            errors = []
            for e in result.errors:
                doc = e.formatted
                doc.setdefault(
                    "extensions", {"type": "graphql error", "code": "GRAPHQL_VALIDATION_FAILED"}
                )
                errors.append(doc)
            return 400, {}, {"errors": errors}
        doc: dict[str, Any] = {"data": result.data}
        if result.errors:
            doc["errors"] = [e.formatted for e in result.errors]
        return 200, {}, doc

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                server.requests.append({"path": self.path, "headers": headers, "body": body})
                status, extra, doc = server.answer(headers, raw)
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.send_response(405)
                self.send_header("Allow", "POST")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
