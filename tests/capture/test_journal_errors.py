"""Disk full, read-only and permission errors stop the journal loudly, naming the path.

Real failures, not mocks: a 64 KiB tmpfs (ENOSPC), a read-only bind mount (EROFS), an
unprivileged child process (EACCES; root bypasses file modes) and RLIMIT_FSIZE with
SIGXFSZ ignored (EFBIG). Mount-based tests skip where mounting is not allowed.
"""

from __future__ import annotations

import errno
import json
import os
import random
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssmd.capture.journal import Journal, JournalError, open_segments, seal_orphans

T0 = 1_709_290_800 * 10**9


def mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount ({proc.stderr.strip()})")


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "tiny"
    where.mkdir()
    mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "ro"
    where.mkdir()
    mount("--bind", str(where), str(where))
    try:
        mount("-o", "remount,ro,bind", str(where))
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def journal(root: Path) -> Journal:
    return Journal(root, "dev", "f", 2, 0, rotate_ns=10**15, rotate_bytes=1 << 40)


def test_disk_full_raises_with_path_and_errno(tiny_fs: Path) -> None:
    j = journal(tiny_fs)
    rng = random.Random(3)
    with pytest.raises(JournalError) as err:
        for i in range(100_000):  # incompressible: ~64 KiB fills after a few hundred
            j.write(T0 + i, i, "in", rng.randbytes(100).hex())
    e = err.value
    assert e.errno == errno.ENOSPC
    assert e.path.is_relative_to(tiny_fs) and e.path.name == f"2-0-{T0}.jsonl.zst"
    assert str(e.path) in str(e) and "errno 28" in str(e)
    assert not isinstance(e, OSError)  # a reconnect loop's `except OSError` cannot eat it
    with pytest.raises(JournalError) as again:  # refuses everything after: no silent drop
        j.write(T0 + 10**9, 0, "in", "x")
    assert again.value is e
    j.close()  # does not raise: the segment stays an orphan for recovery
    assert [s.path for s in open_segments(tiny_fs, "dev", "f")] == [e.path]
    # recovery on a still-full disk is loud too (or succeeds if the manifest fits)
    try:
        (m,) = seal_orphans(tiny_fs, "dev", "f", 2)
        assert m.recovered
    except JournalError as sealed:
        assert sealed.errno == errno.ENOSPC and "manifest" in str(sealed)


def test_read_only_filesystem(read_only: Path) -> None:
    j = journal(read_only)
    with pytest.raises(JournalError) as err:
        j.write(T0, 1, "in", "x")
    assert err.value.errno == errno.EROFS
    assert str(read_only) in str(err.value)


CHILD = r"""
import json, os, sys
from pathlib import Path
from ssmd.capture.journal import Journal, JournalError
if sys.argv[2:] == ["drop"]:  # imports done as root (the venv is root-only): now be nobody
    os.setgid(65534)
    os.setuid(65534)
j = Journal(Path(sys.argv[1]), "dev", "f", 0, 0, rotate_ns=10**15, rotate_bytes=1 << 40)
try:
    for i in range(1_000_000):
        j.write(1_709_290_800 * 10**9 + i, i, "in", "%d %s" % (i, "x" * 200))
        if i % 1000 == 0:
            j.flush()
except JournalError as e:
    print(json.dumps({"errno": e.errno, "path": str(e.path), "message": str(e)}))
    sys.exit(3)
"""


def run_child(root: Path, *args: str, **kw: object) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), *args], capture_output=True, text=True, **kw
    )
    out = proc.stdout.strip().splitlines()
    return proc.returncode, json.loads(out[-1]) if out else {"stderr": proc.stderr}


def test_permission_denied_unprivileged_process(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to start a process as another user")
    root = tmp_path / "owned-by-root"
    root.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)  # nobody may traverse into it, not write there
    code, err = run_child(root, "drop")
    assert code == 3, err
    assert err["errno"] == errno.EACCES
    assert err["path"].startswith(str(root)) and "Permission denied" in err["message"]


def test_file_size_limit_efbig(tmp_path: Path) -> None:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))

    code, err = run_child(tmp_path, preexec_fn=limit)
    assert code == 3, err
    assert err["errno"] == errno.EFBIG
    assert err["path"].endswith(".jsonl.zst") and "File too large" in err["message"]
