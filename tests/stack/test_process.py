"""ManagedProcess: readiness, failure messages with the log tail, stop escalation."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssmd.stack import process as proc_mod
from ssmd.stack.ports import free_port, port_open, wait_port_closed
from ssmd.stack.process import ManagedProcess, ServerStartError, pid_alive, read_tail, terminate


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


def test_readiness_timeout_names_server_and_shows_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "slow.log"
    proc = ManagedProcess(
        "slowpoke", sh("echo line-one; echo never-ready-marker; exec sleep 60"), log
    )
    proc.start()
    pid = proc.pid
    assert pid is not None
    began = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        proc.wait_ready(lambda: False, timeout=0.5)
    message = str(info.value)
    assert message.startswith("slowpoke not ready within 0.5s")
    assert str(log) in message
    assert "never-ready-marker" in message
    assert "never-ready-marker" in info.value.log_tail
    assert time.monotonic() - began < 5
    assert not proc.running and not pid_alive(pid)  # a failed start leaves nothing running


def test_early_exit_reports_exit_code_and_log(tmp_path: Path) -> None:
    proc = ManagedProcess("crasher", sh("echo 'fatal: bad flag' >&2; exit 3"), tmp_path / "c.log")
    proc.start()
    with pytest.raises(ServerStartError) as info:
        proc.wait_ready(lambda: False, timeout=10)
    assert "crasher exited with code 3 before it was ready" in str(info.value)
    assert "fatal: bad flag" in str(info.value)  # stderr goes to the same log


def test_last_check_error_is_reported(tmp_path: Path) -> None:
    proc = ManagedProcess("refuser", sh("exec sleep 60"), tmp_path / "r.log").start()

    def check() -> bool:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(ServerStartError, match="nobody home"):
        proc.wait_ready(check, timeout=0.3)


def test_ready_then_stop_is_clean_and_idempotent(tmp_path: Path) -> None:
    port = free_port()
    server = (
        "import socket, time\n"
        f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)"
    )
    proc = ManagedProcess("tiny", [sys.executable, "-c", server], tmp_path / "t.log").start()
    proc.wait_ready(lambda: port_open(port), timeout=20)
    assert proc.running
    assert os.getpgid(proc.pid or 0) == proc.pid  # own process group
    assert proc.stop() == -signal.SIGTERM
    assert proc.stop() == -signal.SIGTERM  # second stop is a no-op
    assert wait_port_closed(port, timeout=2)
    assert proc not in proc_mod._live


def test_stop_escalates_to_sigkill_and_kills_the_group(tmp_path: Path) -> None:
    # leader ignores SIGTERM; a child in the same group would outlive a polite stop
    script = "trap '' TERM; sleep 60 & echo child=$!; while true; do sleep 0.1; done"
    log = tmp_path / "stubborn.log"
    proc = ManagedProcess("stubborn", sh(script), log, grace=0.5).start()
    proc.wait_ready(lambda: re.search(r"child=\d+", read_tail(log)) is not None, timeout=10)
    child = int(re.findall(r"child=(\d+)", read_tail(log))[0])
    began = time.monotonic()
    code = proc.stop()
    assert code == -signal.SIGKILL
    assert 0.4 < time.monotonic() - began < 5
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)


def test_exit_stops_registered_processes(tmp_path: Path) -> None:
    """A process that forgets to stop its children still stops them at exit (atexit).

    Run in a child interpreter: calling stop_all() here would also stop the session's
    NATS and Postgres fixtures, which are registered in this process.
    """
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ssmd.stack.process import ManagedProcess\n"
        "d = Path(sys.argv[1])\n"
        "for n in ('a', 'b'):\n"
        "    p = ManagedProcess(n, ['sh', '-c', 'exec sleep 60'], d / f'{n}.log').start()\n"
        "    print(p.pid, flush=True)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    pids = [int(line) for line in out.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if pid_alive(p)] == []


def test_terminate_by_pid(tmp_path: Path) -> None:
    proc = ManagedProcess("victim", sh("exec sleep 60"), tmp_path / "v.log").start()
    pid = proc.pid or 0
    assert terminate(pid, grace=5) is True
    assert proc.stop() == -signal.SIGTERM
    assert terminate(pid) is False  # already gone


def test_start_twice_is_refused(tmp_path: Path) -> None:
    proc = ManagedProcess("once", sh("exec sleep 60"), tmp_path / "o.log").start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            proc.start()
    finally:
        proc.stop()
