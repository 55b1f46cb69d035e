"""The reprocessor against a real capture: equal to what the live connector published,
byte-identical reruns, versions side by side, a corrupted segment quarantined, and a
run killed with SIGKILL leaving nothing visible and no duplicates after the rerun."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from tests.history.conftest import REPO, Captured, dev
from tests.history.helpers import archive_records, parquet_files

from ssmd.bus.message import record_message
from ssmd.bus.msgid import seq_scope
from ssmd.capture.journal_manifest import MANIFEST_SUFFIX
from ssmd.capture.journal_read import list_segments
from ssmd.history.query import History
from ssmd.history.reprocess import ReprocessError, reprocess
from ssmd.storage import ObjectStore

FAR = 2**62


def run(root: Path, version: int = 1, parallel: int = 1, objects: Path | None = None):
    store = ObjectStore.local(objects or root / "objects")
    return reprocess(dev(root), "sim", 0, FAR - FAR % (3600 * 10**9), version=version,
                     data_dir=root, store=store, parallel=parallel)  # fmt: skip


def copy_capture(captured: Captured, dest: Path) -> Path:
    shutil.copytree(captured.root / "raw", dest / "raw")
    return dest


def wire(records) -> list[tuple[str, bytes]]:
    return [record_message("dev", r, seq_scope("sim"))[2:0:-1] for r in records]


def test_archive_equals_what_the_live_connector_published(captured: Captured, tmp_path):
    root = copy_capture(captured, tmp_path)
    report = run(root)
    assert report.quarantined == [] and report.frames > 1000
    archived = wire(archive_records(root / "objects"))
    ids = [mid for mid, _ in archived]
    assert len(ids) == len(set(ids)), "duplicates in the archive"
    stream = dict(captured.stream)
    assert len(stream) == len(captured.stream)
    # record by record: same ids, same JSON wire bytes
    assert dict(archived) == stream
    kinds = collections.Counter(msgspec.json.decode(p)["type"] for _, p in archived)
    assert kinds["trade"] and kinds["quote"] and kinds["book"] and kinds["gap"] == 3
    assert report.records == dict(sorted(kinds.items()))


def test_rerun_is_byte_identical_and_replaces(captured: Captured, tmp_path):
    root = copy_capture(captured, tmp_path)
    run(root)
    first = parquet_files(root / "objects")
    markers = sorted((root / "objects").rglob("_hours/**/*.json"))
    again = run(root, parallel=2)
    assert parquet_files(root / "objects") == first  # same keys, same bytes, nothing added
    assert sorted((root / "objects").rglob("_hours/**/*.json")) == markers
    assert again.deleted == []
    # a second, fresh output of the same raw data is the same bytes too
    other = run(root, objects=tmp_path / "other")
    assert parquet_files(tmp_path / "other") == first
    assert other.records == again.records


def test_versions_live_side_by_side(captured: Captured, tmp_path):
    root = copy_capture(captured, tmp_path)
    run(root, version=1)
    v1 = parquet_files(root / "objects")
    run(root, version=2)
    both = parquet_files(root / "objects")
    assert {k: v for k, v in both.items() if k.startswith("normalized/v1/")} == v1
    v2 = {k.replace("/v2/", "/v1/", 1): v for k, v in both.items() if "/v2/" in k}
    assert set(v2) == set(v1)
    store = ObjectStore.local(root / "objects")
    assert History(store, "dev", "sim").version == 2
    assert History(store, "dev", "sim", version=1).version == 1


def test_bad_arguments_are_refused(tmp_path):
    env = dev(tmp_path)
    with pytest.raises(ReprocessError, match="no feed"):
        reprocess(env, "nope", 0, 10, data_dir=tmp_path)
    with pytest.raises(ReprocessError, match="empty range"):
        reprocess(env, "sim", 10, 10, data_dir=tmp_path)
    with pytest.raises(ReprocessError, match="version"):
        reprocess(env, "sim", 0, 10, version=0, data_dir=tmp_path)


def test_corrupted_segment_is_quarantined_and_the_rest_proceeds(captured: Captured, tmp_path):
    root = copy_capture(captured, tmp_path)
    (seg,) = list_segments(root, "dev", "sim")
    # a second connection's segment: the same bytes under conn 1, then one byte flipped
    twin = seg.path.with_name(seg.path.name.replace("0-0-", "0-1-", 1))
    shutil.copy(seg.path, twin)
    shutil.copy(str(seg.path) + MANIFEST_SUFFIX, str(twin) + MANIFEST_SUFFIX)
    data = bytearray(twin.read_bytes())
    data[len(data) // 2] ^= 0xFF
    twin.write_bytes(bytes(data))
    report = run(root)
    assert [q["key"] for q in report.quarantined] == [twin.relative_to(root).as_posix()]
    assert "sha256" in report.quarantined[0]["problem"]
    quarantine = list((root / "objects").rglob("_quarantine/*.json"))
    assert [p.name for p in quarantine] == [twin.name + ".json"]
    # conn 0 is archived whole, exactly as published
    assert dict(wire(archive_records(root / "objects"))) == dict(captured.stream)
    marker = msgspec.json.decode(next((root / "objects").rglob("_hours/**/*.json")).read_bytes())
    assert marker["quarantined"] == [twin.relative_to(root).as_posix()]


def test_killed_mid_run_leaves_nothing_visible_then_rerun_is_exact(captured: Captured, tmp_path):
    root = copy_capture(captured, tmp_path)
    reference = tmp_path / "reference"
    run(root, objects=reference)
    expected = parquet_files(reference)
    env_file = tmp_path / "dev.yaml"
    text = (REPO / "environments" / "dev.yaml").read_text()
    env_file.write_text(text.replace("data_dir: ./data", f"data_dir: {root}"))
    cmd = [sys.executable, "-m", "ssmd.cli.main", "reprocess", "--env", str(env_file),
           "--feed", "sim", "--from", "0", "--to", str(FAR), "--json"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env={**os.environ, "SSMD_REPROCESS_PAUSE": "0.4"}, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    objects = root / "objects"
    deadline = time.monotonic() + 60
    while not parquet_files(objects) if objects.exists() else True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    visible = parquet_files(objects)
    assert 0 < len(visible) < len(expected)  # killed midway
    for key, data in visible.items():  # whole files only
        assert expected[key] == data
    # the hour was not committed: readers see nothing of it
    assert not list(objects.rglob("_hours/**/*.json"))
    store = ObjectStore.local(objects)
    assert History(store, "dev", "sim").trades("BTC-USD", 0, FAR, "ts_recv").num_rows == 0
    # rerun: exactly the reference files, no duplicates
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert parquet_files(objects) == expected
    assert History(store, "dev", "sim").trades("BTC-USD", 0, FAR, "ts_recv").num_rows > 0
