"""The feedback loop end to end: POST /v1/feedback on the real gateway app and the MCP
`report_issue` tool, one shared intake into Postgres, novel issues filed once in a local
Linear contract server (tests/agents/linear_server.py), failures kept and retried by
`ssmd feedback forward`, Linear's resolution pulled back by `ssmd feedback sync` into
`ssmd feedback show`; and schemathesis over the endpoint (zero 5xx)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import schemathesis
from fastapi.testclient import TestClient
from fastmcp import Client
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance
from tests.gateway.rest_app import CLIENTS, ENV
from tests.gateway.rest_helpers import REPO_ROOT, definition, issue, seed_clients, serve_in_thread

from ssmd.agents import feedback, tracker
from ssmd.agents.mcp import build_server
from ssmd.agents.service import Service, Settings
from ssmd.gateway.app import create_app
from ssmd.gateway.settings import GatewaySettings
from ssmd.meta import audit, connect
from ssmd.model.time import parse_time
from ssmd.spec.model import Integrations, IssueTracker

from .linear_server import LinearServer
from .test_feedback import cli

KEY = "lin_api_0123456789abcdefTEST"
T0 = parse_time("2026-03-01T10:15:00Z")
REPORTERS: list[dict[str, Any]] = [
    {
        "id": "reporter",
        "type": "non-display",
        "scopes": ["read", "feedback"],
        "entitlements": [{"feeds": ["sim"], "symbols": ["BTC-*"]}],
    },
    {
        "id": "outsider",
        "type": "non-display",
        "scopes": ["feedback"],
        "entitlements": [{"feeds": ["other"]}],
    },
]
TICK = {
    "kind": "data_quality",
    "subtype": "bad_tick",
    "summary": "price spike to 1.5",
    "feed": "sim",
    "symbol": "BTC-USD",
    "from": T0,
    "to": T0 + 10**9,
    "values": {"price": "1.5", "previous": "60000.05"},
}
TRACKER = IssueTracker(
    kind="linear", api_key="env:SSMD_TEST_LINEAR_KEY", team="MD", labels=["ssmd"]
)
YAML_TRACKER = """
integrations:
  issue_tracker:
    kind: linear
    api_key: env:SSMD_TEST_LINEAR_KEY
    team: MD
    labels: [ssmd]
"""


class Loop:
    def __init__(self, pg_url: str, root: Path, linear: LinearServer, tracked: bool) -> None:
        defn = definition(root)
        if tracked:
            defn = msgspec.structs.replace(defn, integrations=Integrations(issue_tracker=TRACKER))
        self.defn, self.pg_url, self.linear, self.root = defn, pg_url, linear, root
        seed_clients(pg_url, ENV, CLIENTS + REPORTERS)
        self.tokens = {
            c: issue(pg_url, ENV, c).token for c in ("ops", "alice", "reporter", "outsider")
        }
        self.env_file = root / "dev.yaml"
        text = (REPO_ROOT / "environments" / "dev.yaml").read_text()
        self.env_file.write_text(text + (YAML_TRACKER if tracked else ""))
        self.http: TestClient | None = None

    def post(self, who: str | None, body: dict[str, Any]) -> httpx.Response:
        assert self.http is not None
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.http.post("/v1/feedback", json=body, headers=headers)

    def mcp(self, who: str, **args: Any) -> Any:
        service = Service(Settings(self.defn, self.pg_url, data_dir=self.root))
        server = build_server(service, api_key=self.tokens[who], auth_ttl_s=0)

        async def run() -> Any:
            async with Client(server) as c:
                return (await c.call_tool("report_issue", args)).structured_content

        try:
            return asyncio.run(run())
        finally:
            service.close()

    def row(self, issue_id: int) -> dict[str, Any]:
        with connect(self.pg_url) as conn:
            row = feedback.get(conn, issue_id)
        assert row is not None
        return row

    def count(self) -> int:
        with connect(self.pg_url) as conn:
            return conn.execute("SELECT count(*) FROM feedback").fetchone()[0]  # type: ignore[index]

    def ssmd(self, *args: str) -> Any:
        return cli(*args, "--env", str(self.env_file), "--json", "--pg-url", self.pg_url)


def make_loop(
    pg_url: str, root: Path, monkeypatch: pytest.MonkeyPatch, tracked: bool = True
) -> Iterator[Loop]:
    with LinearServer(KEY) as linear:
        monkeypatch.setenv("SSMD_LINEAR_URL", linear.url)
        monkeypatch.setenv("SSMD_TEST_LINEAR_KEY", KEY)
        loop = Loop(pg_url, root, linear, tracked)
        settings = GatewaySettings(
            loop.defn, pg_url, data_dir=root, rate=0, auth_ttl_s=0.3, usage_interval_s=3600
        )
        with TestClient(create_app(settings)) as client:
            loop.http = client
            yield loop


@pytest.fixture
def loop(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    yield from make_loop(pg_url, tmp_path, monkeypatch)


def test_rest_files_a_novel_issue_once_and_counts_repeats(loop: Loop) -> None:
    first = loop.post("reporter", TICK)
    assert first.status_code == 201, first.text
    doc = first.json()
    assert (doc["new"], doc["count"], doc["status"]) == (True, 1, "open")
    [created] = loop.linear.issues.values()
    assert doc["external_url"] == created["url"] == "https://linear.app/ssmd-test/issue/md-1"
    # the exact request Linear received
    [req] = [r for r in loop.linear.requests if "issueCreate" in r["body"]["query"]]
    assert req["headers"]["authorization"] == KEY  # a personal key: no "Bearer"
    assert req["headers"]["content-type"] == "application/json"
    assert req["path"] == "/graphql" and "mutation" in req["body"]["query"]
    sent = req["body"]["variables"]["input"]
    assert sent["teamId"] == loop.linear.team["id"]
    assert sent["title"] == "[ssmd dev] data_quality/bad_tick: price spike to 1.5 (sim BTC-USD)"
    assert sent["labelIds"] == [loop.linear.labels[0]["id"]]
    assert sent["id"] == tracker.issue_uuid(ENV, doc["fingerprint"]) == created["id"]
    assert "60000.05" in sent["description"] and f"feedback show {doc['id']}" in sent["description"]
    team_query = loop.linear.bodies("teams(")[0]
    assert team_query["variables"] == {"key": "MD"}
    # a repeat in other words, case and minute of the same hour, by another client: counted
    again = loop.post(
        "ops",
        {
            **TICK,
            "summary": "PRICE   spike",
            "symbol": "btc-usd",
            "from": "2026-03-01T10:59:00Z",
            "to": None,
        },
    )
    assert again.status_code == 200, again.text
    assert again.json() == {**doc, "new": False, "count": 2}
    assert len(loop.linear.bodies("issueCreate")) == 1
    row = loop.row(doc["id"])
    assert row["reporters"] == ["client:reporter", "client:ops"] and row["source"] == "rest"
    assert row["first_seen_ns"] < row["last_seen_ns"] and row["count"] == 2
    assert row["external_ref"] == created["id"] and row["tracker"]["identifier"] == "MD-1"
    assert row["evidence"] == {"values": TICK["values"]} and row["to_ns"] == T0 + 10**9
    bug = loop.post("reporter", {"kind": "bug", "summary": "bars endpoint slow"})
    assert bug.status_code == 201 and bug.json()["external_url"].endswith("md-2")
    assert loop.linear.bodies("issueCreate")[1]["variables"]["input"]["title"] == (
        "[ssmd dev] bug: bars endpoint slow"
    )


@pytest.mark.parametrize(
    ("who", "body", "status", "code", "words"),
    [
        (None, TICK, 401, "missing_api_key", "no API key"),
        ("alice", TICK, 403, "missing_scope", "lacks scope 'feedback'"),
        ("outsider", TICK, 403, "not_entitled", "not entitled to feed 'sim'"),
        ("reporter", {**TICK, "symbol": "ETH-USD"}, 403, "not_entitled", "symbol 'ETH-USD'"),
        ("outsider", {"kind": "bug", "summary": "x", "feed": "sim"}, 403, "not_entitled", "sim"),
        ("reporter", {**TICK, "subtype": None}, 400, "invalid_report", "subtype: "),
        ("reporter", {**TICK, "kind": "quality"}, 400, "bad_request", "body.kind"),
        ("reporter", {**TICK, "summary": " "}, 400, "invalid_report", "summary: required"),
        ("reporter", {**TICK, "to": T0 - 1}, 400, "invalid_report", "to: the evidence window"),
        ("reporter", {**TICK, "from": "yesterday"}, 400, "invalid_report", "from: not a time"),
        ("reporter", {**TICK, "from": None}, 400, "invalid_report", "from: a data_quality"),
        ("reporter", {**TICK, "feed": "nope"}, 400, "invalid_report", "feed: no feed 'nope'"),
        ("reporter", {**TICK, "colour": "red"}, 400, "bad_request", "body.colour"),
        ("reporter", {"kind": "bug"}, 400, "bad_request", "body.summary"),
    ],
)
def test_rest_refusals_store_nothing(
    loop: Loop, who: str | None, body: dict[str, Any], status: int, code: str, words: str
) -> None:
    resp = loop.post(who, body)
    assert resp.status_code == status, resp.text
    err = resp.json()
    assert (err["error"], err["status"]) == (code, status) and words in err["message"]
    assert loop.count() == 0 and loop.linear.issues == {}


def test_mcp_report_issue_takes_the_same_path(loop: Loop) -> None:
    out = loop.mcp(
        "reporter",
        kind="data_quality",
        subtype="gap",
        summary="no trades 10:00",
        feed="sim",
        symbol="BTC-USD",
        start="2026-03-01T10:00:00Z",
    )
    assert (out["new"], out["count"]) == (True, 1)
    assert out["external_url"] == "https://linear.app/ssmd-test/issue/md-1"
    assert loop.row(out["id"])["source"] == "mcp"
    rest = loop.post(
        "reporter",
        {
            "kind": "data_quality",
            "subtype": "gap",
            "summary": "gap",
            "feed": "sim",
            "symbol": "BTC-USD",
            "from": T0,
        },
    )
    assert rest.status_code == 200 and rest.json()["id"] == out["id"]
    assert rest.json()["count"] == 2 and len(loop.linear.bodies("issueCreate")) == 1
    with pytest.raises(Exception, match="403 not_entitled"):
        loop.mcp("outsider", kind="bug", summary="x", feed="sim")
    with pytest.raises(Exception, match="evidence"):
        loop.mcp("reporter", kind="data_quality", subtype="gap", summary="x")


def test_forward_failures_are_kept_then_retried(loop: Loop) -> None:
    loop.linear.fail_next("ratelimited", status=429)
    first = loop.post("reporter", TICK)
    assert first.status_code == 201 and first.json()["external_url"] is None
    row = loop.row(first.json()["id"])
    assert row["external_ref"] is None and row["forward_error"]["code"] == "ratelimited"
    assert row["forward_error"]["attempts"] == 1 and row["forward_error"]["retry_after"] == 30
    loop.linear.fail_next("ratelimited", status=400)  # Linear's 400 + RATELIMITED form
    bug = loop.post("reporter", {"kind": "bug", "summary": "slow"}).json()
    assert loop.row(bug["id"])["forward_error"]["code"] == "ratelimited"
    # a bad key: the retry stops with exit 1 and the reason recorded
    loop.linear.api_key = "lin_api_rotated"
    out = loop.ssmd("forward")
    assert out.code == 1 and "refused the API key" in out.stderr
    assert loop.row(first.json()["id"])["forward_error"]["attempts"] == 2
    assert loop.row(first.json()["id"])["forward_error"]["code"] == "authentication"
    loop.linear.api_key = KEY
    # the first attempt's issue exists in Linear but its answer was lost: adopted, not refiled
    lost = loop.post("reporter", {"kind": "feature_request", "summary": "funding rates"}).json()
    assert lost["external_url"].endswith("md-1")
    with connect(loop.pg_url) as conn:
        conn.execute(
            'UPDATE feedback SET external_ref = NULL, extra = \'{"forward_error":'
            ' {"code": "unreachable"}}\' WHERE id = %s',
            (lost["id"],),
        )
    out = loop.ssmd("forward")
    assert out.code == 0, out
    results = {r["id"]: r for r in json.loads(out.stdout)["results"]}
    assert sorted(results) == sorted([first.json()["id"], bug["id"], lost["id"]])
    assert results[lost["id"]]["identifier"] == "MD-1"
    assert {results[first.json()["id"]]["identifier"], results[bug["id"]]["identifier"]} == {
        "MD-2",
        "MD-3",
    }
    assert len(loop.linear.issues) == 3 and len(loop.linear.bodies("issueCreate")) == 3
    row = loop.row(first.json()["id"])
    assert (
        row["forward_error"] is None and row["external_url"] == results[row["id"]]["external_url"]
    )
    assert json.loads(loop.ssmd("forward").stdout)["results"] == []  # nothing left


def test_unreachable_tracker_keeps_the_report_and_exits_3(loop: Loop, monkeypatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/graphql"
    monkeypatch.setenv("SSMD_LINEAR_URL", dead)
    resp = loop.post("reporter", TICK)
    assert resp.status_code == 201 and resp.json()["external_url"] is None
    assert loop.row(resp.json()["id"])["forward_error"]["code"] == "unreachable"
    out = loop.ssmd("forward")
    assert out.code == 3 and "Linear unreachable" in out.stderr
    monkeypatch.setenv("SSMD_LINEAR_URL", loop.linear.url)
    assert loop.ssmd("forward").code == 0 and loop.row(resp.json()["id"])["external_ref"]


def test_resolution_in_linear_flows_back_to_show(loop: Loop) -> None:
    ids = [
        loop.post("reporter", {"kind": "bug", "summary": f"bug {i}"}).json()["id"] for i in range(4)
    ]
    loop.linear.fail_next("ratelimited", status=429)
    limited = loop.ssmd("sync")
    assert limited.code == 3 and "rate limit" in limited.stderr
    assert [r["code"] for r in json.loads(limited.stdout)["results"]] == ["ratelimited"]
    loop.linear.set_state("MD-1", "completed", "Done")
    loop.linear.set_state("MD-2", "canceled", "Duplicate")
    loop.linear.set_state("MD-3", "started", "In Progress")
    out = loop.ssmd("sync")
    assert out.code == 0, out
    got = {r["id"]: (r["status"], r["changed"]) for r in json.loads(out.stdout)["results"]}
    assert got == {
        ids[0]: ("resolved", True),
        ids[1]: ("wontfix", True),
        ids[2]: ("acknowledged", True),
        ids[3]: ("open", False),
    }
    shown = cli("show", str(ids[0]), "--json", "--pg-url", loop.pg_url)
    doc = json.loads(shown.stdout)
    assert doc["status"] == "resolved" and doc["tracker"]["state_name"] == "Done"
    assert doc["resolution"]["by"] == "tracker:linear"
    assert doc["resolution"]["note"] == "Linear MD-1 is Done (completed)"
    text = cli("show", str(ids[0]), "--pg-url", loop.pg_url).stdout
    assert "MD-1" in text and "Done (completed)" in text and "resolved by tracker:linear" in text
    with connect(loop.pg_url) as conn:
        log = audit.log(conn, action="feedback.status", actor="tracker:linear")
    assert sorted(e.details["to"] for e in log) == ["acknowledged", "resolved", "wontfix"]
    # the next sync asks only about the unresolved ones; a repeat report does not reopen
    before = len(loop.linear.bodies("SsmdIssue("))
    loop.ssmd("sync")
    assert len(loop.linear.bodies("SsmdIssue(")) - before == 2
    again = loop.post("ops", {"kind": "bug", "summary": "bug 0"}).json()
    assert (again["status"], again["count"], again["new"]) == ("resolved", 2, False)
    assert again["external_url"] == "https://linear.app/ssmd-test/issue/md-1"


def test_without_a_tracker_reports_are_stored_and_forward_says_so(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for lp in make_loop(pg_url, tmp_path, monkeypatch, tracked=False):
        resp = lp.post("reporter", TICK)
        assert resp.status_code == 201 and resp.json()["external_url"] is None
        row = lp.row(resp.json()["id"])
        assert row["forward_error"] is None and row["external_ref"] is None
        out = lp.ssmd("forward")
        assert out.code == 1 and "no issue tracker configured" in out.stderr
        assert lp.linear.requests == []


@pytest.fixture
def served(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with LinearServer(KEY) as linear:
        monkeypatch.setenv("SSMD_LINEAR_URL", linear.url)
        monkeypatch.setenv("SSMD_TEST_LINEAR_KEY", KEY)
        loop = Loop(pg_url, tmp_path, linear, tracked=True)
        app = create_app(GatewaySettings(loop.defn, pg_url, data_dir=tmp_path, rate=0))
        with serve_in_thread(app) as base:
            yield base, loop


def test_schemathesis_feedback_no_5xx(served: Any) -> None:
    base, loop = served
    api = schemathesis.openapi.from_url(base + "/openapi.json")
    op = api["/v1/feedback"]["POST"]
    statuses: set[int] = set()

    @given(case=op.as_strategy())
    @settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def run(case: Any) -> None:
        resp = case.call(base_url=base, headers={"Authorization": f"Bearer {loop.tokens['ops']}"})
        statuses.add(resp.status_code)
        case.validate_response(resp, checks=[not_a_server_error, status_code_conformance])

    run()
    assert 400 in statuses and statuses & {200, 201}, statuses
