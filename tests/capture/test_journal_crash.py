"""Crash safety for real: a writer process is kill -9'ed mid-stream.

The child flushes every 500 lines and logs the line count only after `flush()`
returned, so every logged count is a promise the files must keep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssmd.capture.journal import (
    iter_segment,
    list_segments,
    open_segments,
    read_manifest,
    seal_orphans,
    verify_segment,
)

CHILD = r"""
import os, random, sys, time
from pathlib import Path
from ssmd.capture.journal import Journal

root, log = Path(sys.argv[1]), sys.argv[2]
j = Journal(root, "dev", "crash", 0, 0, rotate_ns=10**15, rotate_bytes=40_000,
            flush_interval_s=0.05)
fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
rng = random.Random(1)
t0 = 1_709_290_800 * 10**9  # 11:00:00Z: no hour boundary within the run
i = 0
while True:
    frame = '{"seq":%d,"x":"%s"}' % (i, rng.randbytes(40).hex())
    j.write(t0 + i * 1000, time.monotonic_ns(), "in", frame)
    i += 1
    if i % 500 == 0:
        j.flush()
        os.write(fd, b"%d\n" % i)
"""


def wait_for(cond, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.02)


def logged(log: Path) -> list[int]:
    return [int(x) for x in log.read_text().split("\n")[:-1]] if log.exists() else []


@pytest.mark.parametrize("closed_before_kill", [3, 8])
def test_kill_9_keeps_every_flushed_line(tmp_path: Path, closed_before_kill: int) -> None:
    root, log = tmp_path / "data", tmp_path / "flushed.log"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(log)])
    try:
        wait_for(
            lambda: (
                len(list_segments(root, "dev", "crash", closed_only=True)) >= closed_before_kill
                and len(logged(log)) >= 2
            )
        )
        # the live writer holds its segment: recovery must not touch it
        assert seal_orphans(root, "dev", "crash", 0) == []
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    promised = logged(log)[-1]

    segs = list_segments(root, "dev", "crash")
    closed = [s for s in segs if s.closed]
    assert len(closed) >= closed_before_kill
    for s in closed:
        verdict = verify_segment(s.path)
        assert verdict, verdict.problem
    orphans = open_segments(root, "dev", "crash")
    assert len(orphans) <= 1  # 0 only if killed between a seal and the next open

    seqs = []
    for s in segs:
        reader = iter_segment(s.path)
        seqs += [int(line.payload.split(",")[0].split(":")[1]) for line in reader]  # type: ignore[union-attr]
        assert s in orphans or not reader.truncated
    assert seqs == list(range(len(seqs)))  # in order, no gap, no duplicate
    assert len(seqs) >= promised

    sealed = seal_orphans(root, "dev", "crash", 0)
    assert [tmp_path / "data" / m.key for m in sealed] == [o.path for o in orphans]
    for m in sealed:
        path = root / m.key
        assert m.recovered and m.closed_by == "recovered"
        assert read_manifest(path) == m
        assert m.size == path.stat().st_size
        assert m.lines == len(list(iter_segment(path)))
        assert m.readable_bytes <= m.size
        verdict = verify_segment(path)
        assert verdict, verdict.problem
    assert open_segments(root, "dev", "crash") == []
    assert seal_orphans(root, "dev", "crash", 0) == []  # idempotent
