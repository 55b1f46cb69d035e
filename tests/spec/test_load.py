# ruff: noqa: E501  (rule cases are a data table)
"""Loading, validation, canonical form, diff and schema on the example definitions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import msgspec
import pytest

from ssmd import spec
from ssmd.spec import units
from ssmd.spec.edit import PER_ENVIRONMENT
from ssmd.spec.yamlsrc import Positions, parse

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "environments" / "dev.yaml"
PROD = REPO / "environments" / "prod.yaml"
TEMPLATES = REPO / "src" / "ssmd" / "spec" / "templates"


def test_dev_values() -> None:
    env = spec.load(DEV)
    assert env.metadata.name == "dev"
    assert list(env.feeds) == ["sim"]
    sim = env.feeds["sim"]
    assert (sim.venue, sim.instruments, sim.shards) == ("sim", ["BTC-USD", "ETH-USD", "SOL-USD"], 1)
    assert env.streams.replicas == 1
    assert env.streams.max_age == units.H
    assert env.streams.max_bytes == 2**30
    assert env.storage.journal.rotate_every == 10 * units.M
    assert env.storage.object_store.url == ""
    assert [(c.id, c.scopes) for c in env.clients] == [
        ("dev-admin", ["admin", "read", "stream"]),
        ("dev-reader", ["read", "stream"]),
    ]


def test_prod_values() -> None:
    env = spec.load(PROD)
    assert {f.venue for f in env.feeds.values()} == {
        "kraken-v2",
        "coinbase-advanced",
        "binance",
        "kalshi",
        "polymarket",
    }
    assert env.feeds["kalshi"].shards == 3
    assert env.feeds["kalshi"].select is not None
    assert env.feeds["kalshi"].select.limit == 1500
    assert env.streams.replicas == 3
    assert env.storage.object_store.url == "s3://acme-ssmd-prod/md"
    creds = env.storage.object_store.credentials
    assert creds is not None
    assert creds.secret_access_key == "k8s:ssmd-s3/secret-access-key"
    assert env.storage.retention.raw == 0  # forever
    assert env.storage.retention.normalized == 365 * units.D
    research = next(c for c in env.clients if c.id == "research")
    assert research.entitlements[0].start == dt.date(2024, 1, 1)
    assert env.schedules["reprocess-daily"].calendar == "crypto"
    assert "function transform(r)" in env.transforms["mid-price"].source
    assert env.calendars["us-equities"].holidays[0] == dt.date(2026, 1, 1)
    assert env.deploy.replicas == {"gateway": 3, "worker": 2}
    assert env.deploy.resources["connector"].limits.memory == "2Gi"


@pytest.mark.parametrize("name", ["minimal", "dev", "prod"])
def test_templates_are_valid(name: str) -> None:
    text = (TEMPLATES / f"{name}.yaml").read_text()
    assert spec.validate_text(text, f"{name}.yaml") == []


def test_dev_and_prod_templates_match_examples() -> None:
    assert (TEMPLATES / "dev.yaml").read_text() == DEV.read_text()
    assert (TEMPLATES / "prod.yaml").read_text() == PROD.read_text()


def test_positions_by_path() -> None:
    tree, errors = parse(DEV.read_text(), "dev.yaml")
    assert errors == []
    pos = Positions(tree)
    lines = DEV.read_text().splitlines()
    line, col = pos.at(("feeds", "sim", "instruments", 1))
    assert lines[line - 1][col - 1 :] == "ETH-USD"
    line, col = pos.at(("streams", "replicas"))
    assert lines[line - 1][col - 1 :].startswith("1  # a single")
    line, col = pos.at(("feeds", "sim"))  # containers: where the key is
    assert lines[line - 1][col - 1 :] == "sim:"
    line, col = pos.at(("feeds", "sim", "no_such_key"))  # falls back to the parent
    assert lines[line - 1][col - 1 :] == "sim:"


def test_all_errors_reported_at_once() -> None:
    text = (
        DEV.read_text()
        .replace("replicas: 1", "replicas: 9")
        .replace("depth: 10", "depht: 10")
        .replace("feeds: [sim]", "feeds: [simm]")
        .replace("max_bytes: 1GiB", "max_bytes: lots")
    )
    errors = spec.validate_text(text, "dev.yaml")
    assert [(e.path, e.line) for e in errors] == [
        ("feeds.sim.depht", 19),
        ("streams.max_bytes", 35),
        ("streams.replicas", 36),
        ("clients[1].entitlements[0].feeds[0]", 51),
    ]


def test_type_error_does_not_cascade() -> None:
    text = DEV.read_text().replace("venue: sim", "venue: [sim]")
    errors = spec.validate_text(text, "dev.yaml")
    # the feed is dropped, but the entitlement naming it is not reported as dangling
    assert [(e.path, e.message) for e in errors] == [
        ("feeds.sim.venue", "expected a string, got a list (['sim'])")
    ]


def test_shards_from_selector_limit() -> None:
    text = PROD.read_text().replace("shards: 3", "shards: 2")
    (error,) = spec.validate_text(text, "prod.yaml")
    assert error.path == "feeds.kalshi.shards"
    assert error.message == "2 shard(s) cannot hold 1500 instruments at 500 per connection"
    assert error.hint == "set shards: 3 or more"


def test_per_connection_above_venue_limit() -> None:
    text = PROD.read_text().replace(
        "max_instruments_per_connection: 500", "max_instruments_per_connection: 900"
    )
    (error,) = spec.validate_text(text, "prod.yaml")
    assert error.path == "feeds.polymarket.max_instruments_per_connection"
    assert error.hint == "set it to 500 or less"


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("cron: 30 0 * * *", "cron: 61 0 * * *", "schedules.reprocess-daily.cron", "cron minute '61' is out of range 0-59"),
        ("cron: 0 3 * * sun", "cron: 0 3 * *", "schedules.retention.cron", "cron '0 3 * *' has 4 fields, expected 5"),
        ("timezone: America/New_York", "timezone: America/New_Yrok", "calendars.us-equities.timezone", "unknown time zone 'America/New_Yrok'"),
        ("dedup_window: 5m", "dedup_window: 3d", "streams.dedup_window", "dedup_window 3d exceeds max_age 2d"),
        ("channel: aeron:udp?endpoint=239.1.1.1:40123", "channel: udp://239.1.1.1", "integrations.bridges.low-latency.channel", "an aeron bridge needs an aeron: channel URI"),
        ("kind: gap_rate\n      max_per_hour: 5", "kind: gap_rate", "quality.checks.gaps", "a gap_rate check needs max_per_hour"),
        ("transforms: [mid-price]", "transforms: [mid]", "clients[2].transforms[0]", "unknown transform 'mid'"),
        ("api_key: env:LINEAR_API_KEY", "api_key: vault:linear", "integrations.issue_tracker.api_key", "unknown secret reference scheme 'vault'"),
        ("credentials: k8s:ssmd-gitops/token", "credentials: k8s:ssmd-gitops", "deploy.gitops.credentials", "malformed secret reference 'k8s:ssmd-gitops': expected k8s:secret-name/key"),
        ("        start: 2024-01-01", "        start: 2024-01-01\n        end: 2023-01-01", "clients[1].entitlements[0].end", "end 2023-01-01 is before start 2024-01-01"),
        ("    gateway: 3\n", "    gatway: 3\n", "deploy.replicas.gatway", "'gatway' is not allowed"),
    ],
)  # fmt: skip
def test_rules(old: str, new: str, path: str, message: str) -> None:
    text = PROD.read_text()
    assert old in text
    errors = spec.validate_text(text.replace(old, new, 1), "prod.yaml")
    assert [(e.path, e.message) for e in errors] == [(path, message)]


def test_object_store_url() -> None:
    text = DEV.read_text().replace(
        "  data_dir: ./data\n",
        "  data_dir: ./data\n  object_store:\n    url: ftp://x/y\n    region: eu\n",
    )
    errors = spec.validate_text(text, "dev.yaml")
    assert [(e.path, e.message) for e in errors] == [
        ("storage.object_store.url", "unsupported object store URL 'ftp://x/y'"),
        ("storage.object_store.region", "region only applies to an s3:// object store"),
    ]


def test_disabled_feed_may_be_empty_but_enabled_may_not() -> None:
    base = "apiVersion: ssmd/v1\nkind: Environment\nmetadata: {name: x}\nfeeds:\n  a:\n    venue: sim\n"
    (error,) = spec.validate_text(base, "x.yaml")
    assert (error.path, error.message) == ("feeds.a", "enabled feed has no instruments")
    assert spec.validate_text(base + "    enabled: false\n", "x.yaml") == []


def test_null_sections_mean_empty() -> None:
    text = "apiVersion: ssmd/v1\nkind: Environment\nmetadata: {name: x}\nfeeds:\nclients:\n"
    env = spec.loads(text)
    assert env.feeds == {} and env.clients == []


def test_canonical_json_is_stable() -> None:
    env = spec.load(DEV)
    text = DEV.read_text()
    respelled = (
        text.replace("max_age: 1h", "max_age: 60m")
        .replace("depth: 10", "depth: 10\n    enabled: true")
        .replace("max_bytes: 1GiB", "max_bytes: 1073741824")
    )
    assert spec.canonical_json(spec.loads(respelled)) == spec.canonical_json(env)
    assert spec.spec_sha256(spec.loads(respelled)) == spec.spec_sha256(env)
    changed = spec.loads(text.replace("replicas: 1", "replicas: 3"))
    assert spec.spec_sha256(changed) != spec.spec_sha256(env)
    data = json.loads(spec.canonical_json(env))
    assert list(data) == sorted(data)
    assert data["streams"] == {"max_age": units.H, "max_bytes": 2**30}
    assert len(spec.spec_sha256(env)) == 64


def test_from_json_round_trip() -> None:
    env = spec.load(PROD)
    assert spec.from_json(spec.canonical_json(env)) == env
    broken = msgspec.structs.replace(env, clients=[*env.clients])
    assert spec.validate(broken) == []


def test_validate_in_memory_model() -> None:
    env = spec.load(DEV)
    feeds = {"other": env.feeds["sim"]}
    (error,) = spec.validate(msgspec.structs.replace(env, feeds=feeds))
    assert str(error) == (
        "<spec>:0:0: clients[1].entitlements[0].feeds[0]: unknown feed 'sim' (known feeds: other)"
    )
    with pytest.raises(spec.InvalidSpec):
        spec.from_json(spec.canonical_json(msgspec.structs.replace(env, feeds=feeds)))


def test_diff_by_path() -> None:
    a = spec.load(DEV)
    text = DEV.read_text()
    b = spec.loads(
        text.replace("replicas: 1", "replicas: 3")
        .replace("      - SOL-USD\n", "      - SOL-USD\n      - XRP-USD\n")
        .replace("  - id: dev-reader", "  - id: dev-reader2")
    )
    changes = [(c.op, c.path, c.old, c.new) for c in spec.diff(a, b)]
    assert ("changed", "streams.replicas", 1, 3) in changes
    assert ("added", "feeds.sim.instruments", None, "XRP-USD") in changes
    assert ("removed", "clients.dev-reader", changes[-2][2], None) in changes
    assert changes[-1][:2] == ("added", "clients.dev-reader2")
    assert len(changes) == 4
    assert spec.diff(a, a) == []
    assert str(spec.diff(a, b)[0]) == "+ feeds.sim.instruments: XRP-USD"


def test_diff_shows_units() -> None:
    a = spec.load(DEV)
    b = spec.loads(DEV.read_text().replace("max_age: 1h", "max_age: 90m"))
    (change,) = spec.diff(a, b)
    assert str(change) == "~ streams.max_age: 1h -> 1h30m"


def test_schema() -> None:
    schema = spec.json_schema()
    defs = schema["$defs"]
    assert schema["$ref"] == "#/$defs/Environment"
    assert set(defs["Environment"]["required"]) == {"apiVersion", "kind", "metadata"}
    assert defs["Environment"]["additionalProperties"] is False
    replicas = defs["Streams"]["properties"]["replicas"]
    assert (replicas["minimum"], replicas["maximum"]) == (1, 5)
    max_age = defs["Streams"]["properties"]["max_age"]
    assert max_age["default"] == "1d"
    assert max_age["anyOf"][0]["type"] == "string"
    assert defs["Retention"]["properties"]["raw"]["default"] == "forever"
    assert defs["Feed"]["properties"]["venue"]["description"].startswith("Venue protocol id")
    assert "pattern" in defs["IssueTracker"]["properties"]["api_key"]
    assert "metadata" in PER_ENVIRONMENT
