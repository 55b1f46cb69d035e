"""Feedback core and store: validation per field, fingerprints (property), dedup and
aggregation in Postgres, and `ssmd feedback list|show|resolve|stats` with --json values."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.meta.helpers import Outcome

from ssmd.agents import feedback, tracker
from ssmd.agents.feedback import InvalidReport, Report, fingerprint, report_from, validate
from ssmd.meta import audit, connect
from ssmd.model.time import parse_time

T0 = parse_time("2026-03-01T10:15:00Z")
H = 3600 * 10**9


def dq(**over: Any) -> Report:
    base: dict[str, Any] = {
        "kind": "data_quality",
        "subtype": "bad_tick",
        "summary": "spike",
        "feed": "sim",
        "symbol": "BTC-USD",
        "from_ns": T0,
    }
    return Report(**{**base, **over})


def cli(*args: str) -> Outcome:
    """`ssmd feedback ARGS` in-process; a CliError becomes its exit code and message."""
    from typer.testing import CliRunner

    from ssmd.cli.feedback import app
    from ssmd.cli.output import CliError

    result = CliRunner().invoke(app, list(args))
    exc = result.exception
    if isinstance(exc, CliError):
        return Outcome(exc.code, result.stdout, result.stderr + f"error: {exc}")
    if exc is not None and not isinstance(exc, SystemExit):
        raise exc
    return Outcome(result.exit_code, result.stdout, result.stderr)


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "field", "words"),
    [
        (dq(kind="quality"), "kind", "one of data_quality"),
        (dq(subtype=""), "subtype", "needs one of bad_tick"),
        (dq(subtype="spike"), "subtype", "not 'spike'"),
        (Report(kind="bug", summary="x", subtype="gap"), "subtype", "only for kind data_quality"),
        (dq(summary="  \n "), "summary", "required"),
        (dq(summary="x" * 201), "summary", "at most 200"),
        (dq(summary="a\x00b"), "summary", "NUL"),
        (dq(details="d" * 4001), "details", "at most 4000"),
        (dq(feed=""), "feed", "needs evidence"),
        (dq(symbol=" "), "symbol", "needs evidence"),
        (dq(from_ns=None), "from", "needs evidence"),
        (dq(from_ns=-1), "from", "between 0 and"),
        (dq(to_ns=T0 - 1), "to", "ends before it starts"),
        (dq(feed="f" * 101), "feed", "at most 100"),
        (dq(values={"blob": "x" * 9000}), "values", "at most 8000 bytes"),
        (dq(values={"s": "a\x00"}), "values", "NUL"),
    ],
)
def test_validation_names_the_field(report: Report, field: str, words: str) -> None:
    with pytest.raises(InvalidReport) as exc:
        validate(report)
    assert exc.value.field == field
    assert str(exc.value).startswith(f"{field}: ") and words in str(exc.value)


def test_report_from_parses_times_and_names_the_argument() -> None:
    r = report_from(kind="bug", summary="s", start="2026-03-01T10:15:00Z", end=T0 + 5)
    assert (r.from_ns, r.to_ns, r.subtype, r.feed, r.values) == (T0, T0 + 5, "", "", {})
    with pytest.raises(InvalidReport, match=r"^start: not a time"):
        report_from(kind="bug", summary="s", start="yesterday", names=("start", "end"))
    clean = validate(dq(summary="  price \t spike ", symbol=" btc-usd ", feed=" sim "))
    assert (clean.summary, clean.symbol, clean.feed) == ("price spike", "BTC-USD", "sim")


# -- fingerprints (property) ------------------------------------------------------------

blank = st.text(alphabet=" \t\n", max_size=3)
words = st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=6), min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(
    words=words,
    pads=st.tuples(blank, blank),
    gaps=st.lists(blank.filter(bool), min_size=5, max_size=5),
    upper=st.booleans(),
    sym=st.sampled_from(["btc-usd", "BTC-usd", " BTC-USD "]),
    offset=st.integers(0, H - 1 - 15 * 60 * 10**9),
)
def test_variants_of_one_report_share_a_fingerprint(
    words: list[str], pads: tuple[str, str], gaps: list[str], upper: bool, sym: str, offset: int
) -> None:
    """Whitespace and case of the summary, the symbol's case and padding, and the time
    within the hour never split an issue; the canonical form fingerprints the same."""
    text = " ".join(words)
    variant = pads[0] + "".join(w + g for w, g in zip(words, gaps, strict=False)) + pads[1]
    variant = variant.upper() if upper else variant
    bug = validate(Report(kind="bug", summary=variant, feed="sim", symbol=sym))
    assert fingerprint("dev", bug) == fingerprint(
        "dev", validate(Report(kind="bug", summary=text, feed="sim", symbol="BTC-USD"))
    )
    data = validate(dq(summary=variant, symbol=sym, from_ns=T0 - 15 * 60 * 10**9 + offset))
    assert fingerprint("dev", data) == fingerprint("dev", validate(dq()))
    assert fingerprint("dev", data) != fingerprint("prod", data)
    assert fingerprint("dev", data) != fingerprint("dev", validate(dq(from_ns=T0 + H)))
    assert fingerprint("dev", data) != fingerprint("dev", validate(dq(subtype="gap")))


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["data_quality", "bug", "unknown", "feature_request", "x"]),
    subtype=st.sampled_from(["", "gap", " stale ", "spike"]),
    summary=st.text(max_size=220),
    symbol=st.text(max_size=12),
    start=st.none() | st.integers(-5, 2**64),
)
def test_validation_is_total_and_idempotent(
    kind: str, subtype: str, summary: str, symbol: str, start: int | None
) -> None:
    """Any input is either refused with a named field or cleaned into a fixed point (the
    intake validates before authorizing and again when storing)."""
    report = Report(
        kind=kind, subtype=subtype, summary=summary, feed="sim", symbol=symbol, from_ns=start
    )
    try:
        clean = validate(report)
    except InvalidReport as exc:
        assert exc.field in ("kind", "subtype", "summary", "symbol", "from")
        return
    assert validate(clean) == clean
    assert clean.summary == " ".join(clean.summary.split()) != ""
    assert clean.symbol == clean.symbol.upper() == clean.symbol.strip()


def test_issue_uuid_is_a_stable_v4() -> None:
    a = tracker.issue_uuid("dev", "f" * 32)
    assert a == tracker.issue_uuid("dev", "f" * 32) != tracker.issue_uuid("prod", "f" * 32)
    assert uuid.UUID(a).version == 4


# -- store: dedup and aggregation -------------------------------------------------------


def test_dedup_counts_and_keeps_reporters_first_and_last_seen(pg_url: str) -> None:
    with connect(pg_url) as conn:
        a = feedback.submit(conn, "dev", dq(), "client:a", "rest")
        b = feedback.submit(conn, "dev", dq(summary="other words", from_ns=T0 + 60), "client:b")
        c = feedback.submit(conn, "dev", dq(symbol="btc-usd"), "client:a")
        other_env = feedback.submit(conn, "prod", dq(), "client:a")
        row = feedback.get(conn, a.id)
    assert (a.new, b.new, c.new, other_env.new) == (True, False, False, True)
    assert a.id == b.id == c.id != other_env.id and (a.count, b.count, c.count) == (1, 2, 3)
    assert row is not None
    assert row["count"] == 3 and row["reporters"] == ["client:a", "client:b"]
    assert row["first_seen_ns"] < row["last_seen_ns"] and row["source"] == "rest"
    assert row["summary"] == "spike" and row["evidence"] == {}  # the first report's words
    assert (row["status"], row["external_ref"], row["external_url"]) == ("open", None, None)


# -- CLI --------------------------------------------------------------------------------


@pytest.fixture
def seeded(pg_url: str) -> dict[str, int]:
    with connect(pg_url) as conn:
        ids = {
            "tick": feedback.submit(conn, "dev", dq(values={"price": "1.5"}), "client:a").id,
            "gap": feedback.submit(conn, "dev", dq(subtype="gap", to_ns=T0 + 9), "client:a").id,
            "bug": feedback.submit(
                conn, "dev", Report(kind="bug", summary="500 on /v1/bars"), "client:b", "rest"
            ).id,
            "prod": feedback.submit(conn, "prod", dq(feed="kraken"), "client:c").id,
        }
        feedback.submit(conn, "dev", dq(), "client:b")  # tick: count 2
    return ids


def test_cli_list_show(pg_url: str, seeded: dict[str, int]) -> None:
    out = cli("list", "--env", "dev", "--json", "--pg-url", pg_url)
    assert out.code == 0, out
    rows = json.loads(out.stdout)
    assert sorted(r["id"] for r in rows) == sorted([seeded["tick"], seeded["gap"], seeded["bug"]])
    tick = next(r for r in rows if r["id"] == seeded["tick"])
    assert (tick["count"], tick["reporters"], tick["symbol"], tick["status"]) == (
        2,
        ["client:a", "client:b"],
        "BTC-USD",
        "open",
    )
    only = json.loads(cli("list", "--kind", "bug", "--json", "--pg-url", pg_url).stdout)
    assert [r["summary"] for r in only] == ["500 on /v1/bars"]
    assert len(json.loads(cli("list", "--all", "--json", "--pg-url", pg_url).stdout)) == 4
    shown = cli("show", str(seeded["tick"]), "--json", "--pg-url", pg_url)
    doc = json.loads(shown.stdout)
    assert doc["evidence"] == {"values": {"price": "1.5"}} and doc["from_ns"] == T0
    assert doc["kind"] == "data_quality" and doc["subtype"] == "bad_tick"
    text = cli("show", str(seeded["gap"]), "--pg-url", pg_url).stdout
    assert "data_quality/gap" in text and "2026-03-01T10:15:00Z" in text
    missing = cli("show", "999999", "--pg-url", pg_url)
    assert missing.code == 1 and "no feedback issue 999999" in missing.stderr
    table = cli("list", "--pg-url", pg_url)
    assert table.code == 0 and "bug" in table.stdout and "sim/BTC-USD" in table.stdout


def test_cli_resolve_is_audited_and_filters_follow(pg_url: str, seeded: dict[str, int]) -> None:
    out = cli(
        "resolve",
        str(seeded["bug"]),
        "--status",
        "wontfix",
        "--note",
        "by design",
        "--actor",
        "carol",
        "--json",
        "--pg-url",
        pg_url,
    )
    assert out.code == 0, out
    doc = json.loads(out.stdout)
    assert doc["status"] == "wontfix" and doc["resolution"]["note"] == "by design"
    assert doc["resolution"]["by"] == "carol" and doc["resolution"]["source"] == "cli"
    with connect(pg_url) as conn:
        [entry] = audit.log(conn, action="feedback.status")
    assert (entry.actor, entry.target) == ("carol", f"feedback/{seeded['bug']}")
    assert entry.details["from"] == "open" and entry.details["to"] == "wontfix"
    open_ids = [r["id"] for r in json.loads(cli("list", "--json", "--pg-url", pg_url).stdout)]
    assert seeded["bug"] not in open_ids
    closed = json.loads(cli("list", "-s", "wontfix", "--json", "--pg-url", pg_url).stdout)
    assert [r["id"] for r in closed] == [seeded["bug"]]
    assert cli("resolve", str(seeded["bug"]), "--status", "done", "--pg-url", pg_url).code == 1
    assert cli("resolve", "999999", "--pg-url", pg_url).code == 1
    assert cli("list", "--status", "closed", "--pg-url", pg_url).code == 1


def test_cli_stats(pg_url: str, seeded: dict[str, int]) -> None:
    cli("resolve", str(seeded["gap"]), "--pg-url", pg_url)
    doc = json.loads(cli("stats", "--env", "dev", "--json", "--pg-url", pg_url).stdout)
    assert (doc["issues"], doc["reports"]) == (3, 4)
    assert doc["by_kind"] == {
        "data_quality": {"issues": 2, "reports": 3},
        "bug": {"issues": 1, "reports": 1},
    }
    assert doc["by_subtype"] == {
        "bad_tick": {"issues": 1, "reports": 2},
        "gap": {"issues": 1, "reports": 1},
        "": {"issues": 1, "reports": 1},
    }
    assert doc["by_feed"] == {"sim": {"issues": 2, "reports": 3}, "": {"issues": 1, "reports": 1}}
    assert doc["by_status"] == {
        "open": {"issues": 2, "reports": 3},
        "resolved": {"issues": 1, "reports": 1},
    }
    every = json.loads(cli("stats", "--json", "--pg-url", pg_url).stdout)
    assert every["issues"] == 4 and every["by_feed"]["kraken"] == {"issues": 1, "reports": 1}
    assert "4 issues, 5 reports" in cli("stats", "--pg-url", pg_url).stdout


def test_cli_unreachable_postgres_is_exit_3() -> None:
    out = cli("list", "--pg-url", "postgresql://ssmd@127.0.0.1:1/none")
    assert out.code == 3 and "unreachable" in out.stderr


def test_ssmd_has_the_feedback_group() -> None:
    from tests.meta.helpers import cli as ssmd

    out = ssmd("feedback", "--help")
    assert out.code == 0, out
    assert all(c in out.stdout for c in ("list", "show", "resolve", "stats", "forward", "sync"))
