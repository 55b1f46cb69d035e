# ruff: noqa: E501  (the expected error lines are data; wrapping them would hide them)
"""Each file in tests/data/invalid holds one class of mistake; the exact errors it gives.

Lines are `file:line:col: path: message (hint)`, the form `ssmd env validate` prints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ssmd.spec import InvalidSpec, load, validate_file

DATA = Path(__file__).resolve().parents[1] / "data" / "invalid"

EXPECTED = {
    "bad_syntax.yaml": [
        "{f}:8:18: <yaml>: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence) (invalid YAML syntax)",
    ],
    "bad_units.yaml": [
        '{f}:6:12: streams.max_age: invalid duration \'7 days\' (use a number and a unit (ns, us, ms, s, m, h, d, w), e.g. "90s", "1h30m", "7d")',
        "{f}:7:14: streams.max_bytes: unknown size unit 'G' (did you mean 'GiB'?)",
        '{f}:8:17: streams.dedup_window: duration 120 has no unit (write e.g. "120s" or "120ms")',
    ],
    "dangling_entitlement.yaml": [
        "{f}:13:17: clients[0].entitlements[0].feeds[0]: unknown feed 'krakken' (did you mean 'kraken'?)",
    ],
    "dangling_transform.yaml": [
        "{f}:8:3: transforms.empty: a transform takes exactly one of source or file (inline Lua or a .lua file)",
        "{f}:12:18: clients[0].transforms[0]: unknown transform 'mid-price' (known transforms: empty, mid)",
    ],
    "duplicate_client.yaml": [
        "{f}:9:9: clients[1].id: duplicate client id 'ops' (already used by clients[0]; ids must be unique)",
    ],
    "duplicate_instrument.yaml": [
        "{f}:11:9: feeds.coinbase.instruments[2]: duplicate instrument 'BTC-USD' (already listed as instruments[0])",
    ],
    "duplicate_key.yaml": [
        '{f}:7:3: <yaml>: found duplicate key "replicas" (each key may appear once in a mapping)',
    ],
    "empty.yaml": [
        "{f}:1:1: <root>: the document is empty (start from `ssmd env create NAME`)",
    ],
    "inline_secret.yaml": [
        "{f}:8:14: integrations.issue_tracker.api_key: inline secrets are not allowed; write a reference to where the secret lives (e.g. env:MY_SECRET, then export MY_SECRET=…; forms: env:NAME, file:/abs/path or k8s:secret/key)",
    ],
    "malformed_secret_ref.yaml": [
        "{f}:9:22: storage.object_store.credentials.access_key_id: malformed secret reference 'env:aws-key': 'aws-key' is not a variable name (env:NAME takes letters, digits and '_', not starting with a digit)",
        "{f}:10:26: storage.object_store.credentials.secret_access_key: malformed secret reference 'file:secrets/s3': the path must be absolute (write file:/absolute/path/to/secret)",
    ],
    "missing_calendar.yaml": [
        "{f}:12:15: schedules.nightly.calendar: unknown calendar 'us-equities' (known calendars: crypto)",
    ],
    "missing_required.yaml": [
        "{f}:3:1: metadata: missing required key 'name'",
        "{f}:6:3: feeds.sim: missing required key 'venue'",
    ],
    "replicas_7.yaml": [
        "{f}:6:13: streams.replicas: 7 is greater than the maximum 5 (JetStream supports 1 to 5 replicas)",
    ],
    "retention_order.yaml": [
        "{f}:7:14: storage.retention.journal: journal retention 30d outlives raw retention 7d (tiers must be ordered journal ≤ raw and normalized ≤ raw: raw is the truth)",
        "{f}:9:17: storage.retention.normalized: normalized retention forever outlives raw retention 7d (tiers must be ordered journal ≤ raw and normalized ≤ raw: raw is the truth)",
    ],
    "too_few_shards.yaml": [
        "{f}:8:13: feeds.kraken.shards: 2 shard(s) cannot hold 250 instruments at 100 per connection (set shards: 3 or more)",
    ],
    "unknown_key.yaml": [
        "{f}:9:5: feeds.sim.shard: unknown key 'shard' (did you mean 'shards'?)",
        "{f}:10:1: stream: unknown key 'stream' (did you mean 'streams'?)",
    ],
    "unknown_venue.yaml": [
        "{f}:7:12: feeds.kraken.venue: unknown venue 'krakn-v2' (did you mean 'kraken-v2'?)",
        "{f}:11:16: feeds.binance.channels[0]: venue binance has no channel 'trades' (did you mean 'trade'?)",
    ],
    "wrong_api_version.yaml": [
        "{f}:1:13: apiVersion: 'ssmd/v2' is not allowed (did you mean 'ssmd/v1'?)",
        "{f}:2:7: kind: 'Enviroment' is not allowed (did you mean 'Environment'?)",
        "{f}:4:9: metadata.name: 'Bad_Name' is not a valid value (lowercase letters, digits and '-', starting with a letter, ≤ 31 chars)",
    ],
    "wrong_type.yaml": [
        "{f}:8:18: feeds.sim.instruments: expected a list, got a string ('BTC-USD')",
        "{f}:9:12: feeds.sim.depth: expected an integer, got a string ('ten')",
        "{f}:10:14: feeds.sim.enabled: expected true or false, got a string ('yes')",
    ],
}


def test_every_file_is_covered() -> None:
    assert sorted(p.name for p in DATA.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exact_errors(name: str) -> None:
    path = DATA / name
    lines = [str(e) for e in validate_file(path)]
    assert lines == [line.format(f=path) for line in EXPECTED[name]]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_raises_with_all_errors(name: str) -> None:
    with pytest.raises(InvalidSpec) as exc:
        load(DATA / name)
    assert len(exc.value.errors) == len(EXPECTED[name])


def test_error_fields_are_structured() -> None:
    (error,) = validate_file(DATA / "replicas_7.yaml")
    assert (error.line, error.col, error.path) == (6, 13, "streams.replicas")
    assert error.message == "7 is greater than the maximum 5"
    assert error.hint == "JetStream supports 1 to 5 replicas"
    assert error.file == str(DATA / "replicas_7.yaml")
