"""Retention per tier: dry run vs execute with exact lists, local and S3 stores, the
catalog as the only licence to delete raw objects, every deletion audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssmd.meta import connect
from ssmd.spec.model import Retention
from ssmd.storage import ObjectStore
from ssmd.storage import retention as policy
from ssmd.storage.keys import manifest_key

from .helpers import (
    DAY,
    HOUR,
    T0,
    audit_actions,
    catalog_rows,
    make_bucket,
    new_shipper,
    s3_store,
    write_segments,
)

PARQUET = [
    "normalized/v1/dev/sim/trade/date=2024-03-01/hour=10/part-0.parquet",
    "normalized/v1/dev/sim/trade/date=2024-03-01/hour=11/part-0.parquet",
    "normalized/v1/dev/sim/quote/date=2024-03-01/hour=10/part-0.parquet",
    "normalized/v2/dev/sim/trade/date=2024-03-01/hour=10/part-0.parquet",
    "normalized/v1/dev/sim/trade/date=2024-03-02/hour=00/part-0.parquet",
    "normalized/v1/dev/sim/trade/date=2024-03-03/hour=00/part-0.parquet",
    "normalized/v1/prod/sim/trade/date=2024-03-01/hour=10/part-0.parquet",
]
STRAY = "raw/dev/sim/2024-02-01/00/0-0-1706745600000000000.jsonl.zst"


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return ObjectStore.local(tmp_path / "objects")
    server = request.getfixturevalue("s3_server")
    return s3_store(server, make_bucket(server))


def setup_world(store: ObjectStore, root: Path, pg_url: str) -> dict[str, list]:
    """3 shipped segments (10h, 11h, 12h on 2024-03-01), one closed but never shipped
    (13h), one quarantined (a flipped byte, 14h... written as a separate shard), Parquet
    partitions, and a raw object the catalog knows nothing about."""
    shipped = write_segments(root, hours=3)
    bad = write_segments(root, shard=1, hours=1, start=T0 + 4 * HOUR)[0]
    path = root / bad.key
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    shipper = new_shipper(pg_url, store, root, [T0 + 5 * HOUR], retention_ns=DAY)
    try:
        report = shipper.run_pass()
    finally:
        shipper.close()
    assert report.shipped == [m.key for m in shipped]
    assert [k for k, _ in report.quarantined] == [bad.key]
    later = write_segments(root, shard=2, hours=1, start=T0 + 3 * HOUR)  # after the pass
    for i, key in enumerate(PARQUET):
        store.put(key, b"p" * (100 + i))
    store.put(STRAY, b"stray raw object, not in the catalog")
    return {"shipped": shipped, "bad": [bad], "later": later}


def test_dry_run_then_execute(store: ObjectStore, tmp_path: Path, pg_url: str) -> None:
    root = tmp_path / "data"
    world = setup_world(store, root, pg_url)
    s0, s1, s2 = world["shipped"]
    (later,) = world["later"]
    (bad,) = world["bad"]
    ret = Retention(journal=DAY, raw=3 * DAY, normalized=2 * DAY)
    # now: 2024-03-04 11:15 — journal cut 03-03 11:15, raw cut 03-01 11:15, normalized
    # cut 03-02 11:15 (a partition goes once its whole day is older)
    now = T0 + 3 * DAY + HOUR + 15 * 60 * 10**9
    before_objects = {o.key: o.size for o in store.list()}
    with connect(pg_url) as conn:
        plan = policy.plan(conn, store, "dev", root, ret, now)
    as_dict = plan.as_dict()
    tiers = as_dict["tiers"]
    assert [i["key"] for i in tiers["journal"]["items"]] == [s0.key, s1.key, s2.key]
    assert tiers["journal"]["bytes"] == s0.size + s1.size + s2.size
    assert tiers["journal"]["held"] == [{"key": later.key, "reason": "not verified-shipped yet"}]
    assert [i["key"] for i in tiers["raw"]["items"]] == [s0.key]  # 11h ends 11:29: after the cut
    assert tiers["raw"]["items"][0]["size"] == s0.size
    assert tiers["raw"]["held"] == []  # the quarantined segment (14h) is not old enough
    assert tiers["normalized"]["items"] == [
        {
            "key": "normalized/v1/dev/sim/quote/date=2024-03-01",
            "size": 102,
            "end_ns": T0 + 14 * HOUR,
            "files": 1,
        },
        {
            "key": "normalized/v1/dev/sim/trade/date=2024-03-01",
            "size": 201,
            "end_ns": T0 + 14 * HOUR,
            "files": 2,
        },
        {
            "key": "normalized/v2/dev/sim/trade/date=2024-03-01",
            "size": 103,
            "end_ns": T0 + 14 * HOUR,
            "files": 1,
        },
    ]
    # the dry run changed nothing
    assert {o.key: o.size for o in store.list()} == before_objects
    assert all((root / m.key).exists() for m in (s0, s1, s2, later))
    assert audit_actions(pg_url) == [("segment.quarantine", bad.key)]

    with connect(pg_url) as conn:
        plan = policy.plan(conn, store, "dev", root, ret, now)
        policy.apply(plan, conn, store, root, "alice")
    assert plan.deleted == {
        "journal": [s0.key, s1.key, s2.key],
        "raw": [s0.key],
        "normalized": [
            "normalized/v1/dev/sim/quote/date=2024-03-01",
            "normalized/v1/dev/sim/trade/date=2024-03-01",
            "normalized/v2/dev/sim/trade/date=2024-03-01",
        ],
    }
    gone = {s0.key, manifest_key(s0.key), *PARQUET[:4]}
    assert {o.key: o.size for o in store.list()} == {
        k: v for k, v in before_objects.items() if k not in gone
    }
    assert store.exists(STRAY)  # never deleted: the catalog does not vouch for it
    assert not any((root / m.key).exists() for m in (s0, s1, s2))
    assert (root / later.key).exists()
    rows = catalog_rows(pg_url)
    assert rows[s0.key].object_deleted_ns == now and rows[s1.key].object_deleted_ns is None
    assert all(rows[m.key].local_deleted_ns == now for m in (s0, s1, s2))
    assert audit_actions(pg_url) == [
        ("segment.quarantine", bad.key),
        ("segment.delete_local", s0.key),
        ("segment.delete_local", s1.key),
        ("segment.delete_local", s2.key),
        ("segment.delete_object", s0.key),
        ("normalized.delete_partition", "normalized/v1/dev/sim/quote/date=2024-03-01"),
        ("normalized.delete_partition", "normalized/v1/dev/sim/trade/date=2024-03-01"),
        ("normalized.delete_partition", "normalized/v2/dev/sim/trade/date=2024-03-01"),
    ]
    with connect(pg_url) as conn:
        actor, details = conn.execute(
            "SELECT actor, details FROM audit_log WHERE action = 'segment.delete_object'"
        ).fetchone()
    assert actor == "alice"
    assert details == {
        "tier": "raw",
        "size": s0.size,
        "sha256": s0.sha256,
        "end_ns": s0.last_t,
        "retention_ns": 3 * DAY,
    }
    # idempotent: a second run finds nothing more
    with connect(pg_url) as conn:
        again = policy.plan(conn, store, "dev", root, ret, now)
    assert all(not items for items in again.items.values())


def test_unverified_raw_never_deleted(tmp_path: Path, pg_url: str) -> None:
    store = ObjectStore.local(tmp_path / "objects")
    root = tmp_path / "data"
    world = setup_world(store, root, pg_url)
    (bad,) = world["bad"]
    ret = Retention(journal=DAY, raw=DAY, normalized=0)
    now = T0 + 30 * DAY
    with connect(pg_url) as conn:
        plan = policy.plan(conn, store, "dev", root, ret, now)
        policy.apply(plan, conn, store, root, "bob")
    assert [h.key for h in plan.held if h.tier == "raw"] == [bad.key]
    assert [h.reason for h in plan.held if h.tier == "raw"] == ["quarantined"]
    assert plan.deleted["raw"] == [m.key for m in world["shipped"]]
    assert plan.items["normalized"] == []  # 0 = forever
    assert store.exists(STRAY)
    assert sorted(o.key for o in store.list("normalized")) == sorted(PARQUET)


def test_forever_everywhere_deletes_nothing(tmp_path: Path, pg_url: str) -> None:
    store = ObjectStore.local(tmp_path / "objects")
    root = tmp_path / "data"
    setup_world(store, root, pg_url)
    with connect(pg_url) as conn:
        plan = policy.plan(
            conn, store, "dev", root, Retention(journal=0, raw=0, normalized=0), T0 + 999 * DAY
        )
    assert plan.items == {"journal": [], "raw": [], "normalized": []}
