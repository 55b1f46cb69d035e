"""Object store down during shipping (DESIGN §1.4, issue 5): nothing lost, nothing deleted
early, the shipper catches up after the restart, and no object is duplicated.

The store is our own moto server on a pinned port so it can be stopped and restarted.
moto keeps objects in memory (a restart empties it), so every outage here begins before
an object could be verified: before the pass, or in the middle of an upload.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssmd.capture.journal import Journal
from ssmd.stack.ports import free_port
from ssmd.stack.s3 import S3Server
from ssmd.storage import ObjectInfo, ObjectStore
from ssmd.storage.keys import manifest_key
from ssmd.storage.service import ServiceOptions, run_service
from ssmd.storage.store import PART_SIZE

from .helpers import HOUR, T0, catalog_rows, make_bucket, new_shipper, s3_keys, write_segments

BUCKET = "ship-outage"


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[S3Server]:
    server = S3Server(tmp_path / "s3", free_port())
    try:
        yield server.start()
    finally:
        server.stop()


def restart(server: S3Server) -> None:
    server.start()
    make_bucket(server, BUCKET)  # moto forgot everything, the bucket included


def wait_until(cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def run_once_in_thread(shipper, **opts) -> tuple[threading.Thread, dict]:
    """run_service(once) in a thread; the result (or exception) lands in the dict."""
    out: dict = {}
    options = ServiceOptions(once=True, backoff_initial_s=0.2, backoff_cap_s=1.0, **opts)

    def main() -> None:
        try:
            out["report"] = asyncio.run(run_service(shipper, asyncio.Event(), options))
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread, out


def test_store_down_before_pass_then_catch_up(own_s3: S3Server, tmp_path: Path, pg_url) -> None:
    make_bucket(own_s3, BUCKET)
    root = tmp_path / "data"
    segs = write_segments(root, hours=4)
    local = {m.key: (root / m.key).read_bytes() for m in segs}
    store = ObjectStore.s3(
        BUCKET,
        endpoint=own_s3.url,
        access_key_id=own_s3.access_key,
        secret_access_key=own_s3.secret_key,
    )
    own_s3.stop()
    # a 1 ns local window: anything verified would be deleted at once — nothing may be
    shipper = new_shipper(pg_url, store, root, [T0 + 5 * HOUR], retention_ns=1)
    try:
        report = shipper.run_pass()
        assert not report.ok and report.error.startswith("StoreUnavailable: object store")
        assert (report.shipped, report.found, report.deleted_local) == ([], [], [])
        assert (report.pending, report.pending_bytes) == (4, sum(len(b) for b in local.values()))
        assert all((root / k).read_bytes() == b for k, b in local.items())
        rows = catalog_rows(pg_url)
        first = rows[segs[0].key]
        assert (first.verified, first.attempts) == (False, 1)
        assert "failed" in first.last_error
        assert not any(r.verified for r in rows.values())

        thread, out = run_once_in_thread(shipper)
        wait_until(lambda: shipper.store_errors >= 3)  # retrying with backoff while down
        assert all((root / k).exists() for k in local)  # still nothing deleted
        restart(own_s3)
        thread.join(120)
        assert "error" not in out, out.get("error")
        summary = out["report"]
        assert summary.ok and summary.shipped == [m.key for m in segs]
        assert summary.deleted_local == [m.key for m in segs]  # only now: verified
        want = {k: len(b) for k, b in local.items()}
        want |= {manifest_key(k): len(store.get(manifest_key(k))) for k in local}
        assert s3_keys(own_s3, BUCKET) == want  # each key once: no duplicates, no loss
        for key, data in local.items():
            assert store.get(key) == data
        rows = catalog_rows(pg_url)
        assert all(r.verified and r.local_deleted_ns for r in rows.values())
        assert rows[segs[0].key].attempts >= 2  # failures were recorded, then it shipped
    finally:
        shipper.close()


class StopServerDuringPut(ObjectStore):
    """The real S3 store; its first segment upload is started while the server is being
    stopped (a real outage mid-upload, no mock in between)."""

    server: S3Server
    fired = False

    def put(self, key: str, data) -> ObjectInfo:
        if not self.fired and key.endswith(".jsonl.zst"):
            type(self).fired = True
            threading.Thread(target=self.server.stop, daemon=True).start()
            time.sleep(0.05)  # the upload starts while the server goes down
        return super().put(key, data)


def test_store_dies_during_multipart_upload(own_s3: S3Server, tmp_path: Path, pg_url) -> None:
    make_bucket(own_s3, BUCKET)
    root = tmp_path / "data"
    journal = Journal(root, "dev", "big", 0, 0, rotate_ns=2 * HOUR, rotate_bytes=2**30)
    for i in range(6000):  # random hex: ~2x compression, still > one part
        journal.write(T0 + i * 10**6, i, "in", os.urandom(2000).hex())
    journal.close()
    segs = [*journal.manifests, *write_segments(root, feed="small", hours=2)]
    assert segs[0].size > PART_SIZE  # a multipart upload
    local = {m.key: (root / m.key).read_bytes() for m in segs}
    base = ObjectStore.s3(
        BUCKET,
        endpoint=own_s3.url,
        access_key_id=own_s3.access_key,
        secret_access_key=own_s3.secret_key,
    )
    store = StopServerDuringPut(base._store, base.location)
    StopServerDuringPut.server = own_s3
    shipper = new_shipper(pg_url, store, root, [T0 + 3 * HOUR], retention_ns=1)
    try:
        thread, out = run_once_in_thread(shipper)
        wait_until(lambda: shipper.store_errors >= 2)
        assert all((root / k).read_bytes() == b for k, b in local.items())
        assert not any(r.verified for r in catalog_rows(pg_url).values())
        restart(own_s3)
        thread.join(180)
        assert "error" not in out, out.get("error")
        summary = out["report"]
        assert sorted(summary.shipped) == sorted(local)
        assert sorted(summary.deleted_local) == sorted(local)
        keys = s3_keys(own_s3, BUCKET)
        assert {k: v for k, v in keys.items() if not k.endswith(".manifest.json")} == {
            k: len(b) for k, b in local.items()
        }
        assert len(keys) == 2 * len(local)
        for key, data in local.items():
            assert store.get(key) == data
    finally:
        shipper.close()
