"""The shipper end to end on segments written by the real Journal, against the local
store and the real S3-compatible server, with the real Postgres catalog."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ssmd.capture.journal_manifest import manifest_path, read_manifest
from ssmd.capture.journal_read import seal_orphans
from ssmd.storage import ObjectStore
from ssmd.storage.keys import manifest_key
from ssmd.storage.shipper import Outcome

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


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return ObjectStore.local(tmp_path / "objects")
    server = request.getfixturevalue("s3_server")
    return s3_store(server, make_bucket(server))


def store_keys(store: ObjectStore) -> dict[str, int]:
    return {o.key: o.size for o in store.list()}


def test_ship_verify_catalog_then_expire(store: ObjectStore, tmp_path: Path, pg_url: str) -> None:
    root = tmp_path / "data"
    sim = write_segments(root, feed="sim", hours=3)
    other = write_segments(
        root, feed="kraken", shard=1, conn=2, hours=1, start=T0 + 30 * 60 * 10**9
    )
    assert [m.key.split("/")[3:5] for m in sim] == [
        ["2024-03-01", "10"],
        ["2024-03-01", "11"],
        ["2024-03-01", "12"],
    ]
    local = {m.key: (root / m.key).read_bytes() for m in sim + other}
    clock = [T0 + 4 * HOUR]
    shipper = new_shipper(pg_url, store, root, clock)
    try:
        report = shipper.run_pass()
        # oldest first across feeds: sim 10:00, kraken 10:30, sim 11:00, sim 12:00
        order = [sim[0].key, other[0].key, sim[1].key, sim[2].key]
        assert report.ok and report.shipped == order
        assert (report.found, report.quarantined, report.failed) == ([], [], [])
        assert report.bytes_uploaded == sum(len(b) for b in local.values())
        assert report.deleted_local == [] and report.pending == 0
        # the store holds exactly the segments and their manifests, byte for byte
        want = {k: len(b) for k, b in local.items()}
        want |= {manifest_key(k): (root / manifest_key(k)).stat().st_size for k in local}
        assert store_keys(store) == want
        for key, data in local.items():
            assert store.get(key) == data
            assert (
                json.loads(store.get(manifest_key(key)))["sha256"]
                == hashlib.sha256(data).hexdigest()
            )
        rows = catalog_rows(pg_url)
        assert sorted(rows) == sorted(local)
        for m in sim + other:
            row = rows[m.key]
            assert (row.env, row.feed, row.shard, row.conn, row.start_ns) == (
                "dev",
                m.feed,
                m.shard,
                m.conn,
                m.start_ns,
            )
            assert (row.first_t, row.last_t, row.lines, row.size, row.sha256) == (
                m.first_t,
                m.last_t,
                40,
                m.size,
                m.sha256,
            )
            assert row.verified and row.shipped_ns == clock[0] and row.verified_ns == clock[0]
            assert row.etag and row.local_deleted_ns is None and row.quarantine_reason is None
        assert all((root / k).exists() for k in local)  # inside the 1-day window

        # a day later, only what is older than the window goes; nothing is re-uploaded
        clock[0] = sim[1].last_t + DAY
        again = shipper.run_pass()
        assert again.shipped == [] and again.bytes_uploaded == 0
        assert again.deleted_local == [sim[0].key, other[0].key, sim[1].key]
        assert not (root / sim[0].key).exists() and not manifest_path(root / sim[0].key).exists()
        assert (root / sim[2].key).exists() and manifest_path(root / sim[2].key).exists()
        rows = catalog_rows(pg_url)
        assert rows[sim[1].key].local_deleted_ns == clock[0]
        assert rows[sim[2].key].local_deleted_ns is None
        assert audit_actions(pg_url) == [("segment.delete_local", k) for k in again.deleted_local]
        assert store_keys(store) == want  # the store is untouched by local retention
        assert shipper.run_pass().deleted_local == []
    finally:
        shipper.close()


def test_forever_window_keeps_local(tmp_path: Path, pg_url: str) -> None:
    root = tmp_path / "data"
    (m,) = write_segments(root, hours=1)
    clock = [T0 + 400 * DAY]
    shipper = new_shipper(pg_url, ObjectStore.local(tmp_path / "o"), root, clock, retention_ns=0)
    try:
        assert shipper.run_pass().shipped == [m.key]
        assert shipper.run_pass().deleted_local == []
        assert (root / m.key).exists()
    finally:
        shipper.close()


def test_resume_finds_uploaded_object_and_replaces_a_wrong_one(
    store: ObjectStore, tmp_path: Path, pg_url: str
) -> None:
    """A crash between upload and record: the next run verifies and records without a
    second upload; a wrong object at the key is replaced (same key: never a duplicate)."""
    root = tmp_path / "data"
    a, b = write_segments(root, hours=2)
    store.put(a.key, root / a.key)  # uploaded, then the process died
    store.put(b.key, b"garbage of another size")
    shipper = new_shipper(pg_url, store, root, [T0 + 3 * HOUR])
    try:
        report = shipper.run_pass()
        assert report.found == [a.key] and report.shipped == [b.key]
        assert report.bytes_uploaded == b.size
        assert store.get(b.key) == (root / b.key).read_bytes()
        assert sorted(store_keys(store)) == sorted(
            [a.key, b.key, manifest_key(a.key), manifest_key(b.key)]
        )
        assert all(r.verified for r in catalog_rows(pg_url).values())
        assert shipper.totals[Outcome.FOUND] == 1 and shipper.totals[Outcome.SHIPPED] == 1
    finally:
        shipper.close()


def test_corrupt_segment_quarantined_others_ship(
    store: ObjectStore, tmp_path: Path, pg_url: str
) -> None:
    root = tmp_path / "data"
    segs = write_segments(root, hours=3)
    bad = root / segs[1].key
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    clock = [T0 + 4 * HOUR]
    shipper = new_shipper(pg_url, store, root, clock, retention_ns=1)
    try:
        report = shipper.run_pass()
        assert report.shipped == [segs[0].key, segs[2].key]
        assert [k for k, _ in report.quarantined] == [segs[1].key]
        reason = report.quarantined[0][1]
        assert reason.startswith(f"local bytes do not match the manifest: size {segs[1].size}")
        assert f"(manifest {segs[1].sha256})" in reason
        moved = root / "quarantine" / segs[1].key
        assert moved.read_bytes() == bytes(data)
        assert read_manifest(moved).sha256 == segs[1].sha256
        assert not bad.exists() and not manifest_path(bad).exists()
        assert not store.exists(segs[1].key)
        row = catalog_rows(pg_url)[segs[1].key]
        assert (row.verified, row.quarantine_reason, row.quarantine_path) == (
            False,
            reason,
            str(moved),
        )
        assert report.deleted_local == [segs[0].key, segs[2].key]  # verified + window 1 ns
        assert audit_actions(pg_url) == [
            ("segment.delete_local", segs[0].key),
            ("segment.quarantine", segs[1].key),
            ("segment.delete_local", segs[2].key),
        ]

        # recovery as documented: re-seal the quarantined file and put it back
        manifest_path(moved).unlink()
        bad.parent.mkdir(parents=True, exist_ok=True)
        moved.rename(bad)
        (sealed,) = seal_orphans(root, "dev", "sim", 0)
        assert sealed.recovered and sealed.key == segs[1].key and sealed.lines < 40
        again = shipper.run_pass()
        assert again.shipped == [segs[1].key] and again.quarantined == []
        assert store.get(segs[1].key) == bytes(data)
        row = catalog_rows(pg_url)[segs[1].key]
        assert row.verified and row.quarantine_reason is None and row.lines == sealed.lines
    finally:
        shipper.close()


def test_bad_manifests_quarantined(tmp_path: Path, pg_url: str) -> None:
    root = tmp_path / "data"
    a, b = write_segments(root, hours=2)
    manifest_path(root / a.key).write_text("{not json")
    mb = json.loads(manifest_path(root / b.key).read_text())
    mb["key"] = "raw/dev/sim/elsewhere.jsonl.zst"
    manifest_path(root / b.key).write_text(json.dumps(mb))
    shipper = new_shipper(pg_url, ObjectStore.local(tmp_path / "o"), root, [T0 + 3 * HOUR])
    try:
        report = shipper.run_pass()
        assert report.shipped == []
        reasons = dict(report.quarantined)
        assert reasons[a.key].startswith("unreadable manifest:")
        assert reasons[b.key] == (
            f"manifest names key 'raw/dev/sim/elsewhere.jsonl.zst' (env 'dev'), file is at "
            f"{b.key!r}"
        )
        rows = catalog_rows(pg_url)
        assert rows[a.key].sha256 is None and rows[a.key].size == a.size
        assert (root / "quarantine" / a.key).exists()
    finally:
        shipper.close()


def test_one_shipper_per_env(tmp_path: Path, pg_url: str) -> None:
    from ssmd.storage.shipper import ShipperBusy

    store = ObjectStore.local(tmp_path / "o")
    first = new_shipper(pg_url, store, tmp_path, [T0])
    second = new_shipper(pg_url, store, tmp_path, [T0])
    try:
        first.conn()
        with pytest.raises(ShipperBusy, match="another shipper is running for environment 'dev'"):
            second.conn()
        first.close()
        second.conn()  # the lock goes with the first one's session
    finally:
        first.close()
        second.close()
