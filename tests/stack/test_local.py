"""LocalStack (what `ssmd up` runs) and stop_stack (what `ssmd down` calls)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import psycopg
import pytest

from ssmd.stack.local import LocalStack, StackAlreadyRunning, stop_stack
from ssmd.stack.ports import port_open
from ssmd.stack.process import pid_alive
from ssmd.stack.state import (
    StackState,
    read_state,
    resolve_nats_url,
    resolve_pg_url,
    state_path,
    write_state,
)

from .helpers import assert_gone


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ssmd-test-local-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def nats_answers(url: str) -> bool:
    async def go() -> bool:
        nc = await nats.connect(url)
        try:
            await nc.jetstream().account_info()
            return nc.is_connected
        finally:
            await nc.close()

    return asyncio.run(go())


def assert_state_gone(state: StackState) -> None:
    for pid in state.pids.values():
        assert not pid_alive(pid), f"pid {pid} still alive"
    for ports in state.ports.values():
        for port in ports:
            assert not port_open(port), f"port {port} still open"
    assert not state_path(Path(state.data_dir)).exists()


def test_round_trip_writes_state_and_clears_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSMD_DATA_DIR", str(data_dir))
    monkeypatch.delenv("SSMD_PG_URL", raising=False)
    monkeypatch.delenv("SSMD_NATS_URL", raising=False)
    with LocalStack(data_dir, "dev") as stack:  # durable, as `ssmd up` runs it
        state = read_state(data_dir)
        assert state is not None and state == stack.state
        assert state.env == "dev"
        assert state.data_dir == str(data_dir.resolve())
        assert state.nats_url == stack.nats.url
        assert state.pg_url == f"postgresql://postgres@127.0.0.1:{stack.postgres.port}/postgres"
        assert state.s3_url == "" and state.temporal_address == ""
        assert set(state.pids) == {"nats", "postgres"}
        assert state.pids["nats"] == stack.nats.pid
        assert state.ports["nats"] == [stack.nats.port, stack.nats.monitor_port]
        assert state.owner_pid == os.getpid()
        assert abs(state.started_ns - time.time_ns()) < 120 * 10**9
        # other commands find the stack through the state file
        assert resolve_pg_url() == state.pg_url
        assert resolve_nats_url() == state.nats_url
        with psycopg.connect(resolve_pg_url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert nats_answers(resolve_nats_url())
        for sub in ("nats", "postgres", "logs"):
            assert (data_dir / sub).is_dir()
        assert (data_dir / "logs" / "nats.log").is_file()
        assert (data_dir / "logs" / "postgres.log").is_file()
        assert (data_dir / "postgres" / "pgdata" / "PG_VERSION").is_file()
        assert set(stack.startup_seconds) == {"nats", "postgres"}
        assert all(0 < t < 60 for t in stack.startup_seconds.values())
    assert read_state(data_dir) is None
    assert_state_gone(state)
    assert_gone(stack.postgres, state.pids["postgres"])


def test_second_stack_on_same_dir_is_refused_and_stale_state_cleared(data_dir: Path) -> None:
    with LocalStack(data_dir, "dev", durable=False) as first:
        with pytest.raises(StackAlreadyRunning, match="already running"):
            LocalStack(data_dir, "dev", durable=False).start()
        assert read_state(data_dir) == first.state  # the refused start touched nothing
    # a stack that died without cleaning up leaves a state file with dead pids
    stale = StackState(
        env="dev", data_dir=str(data_dir), nats_url="x", pg_url="y", pids={"nats": 2**22 + 7}
    )
    write_state(stale)
    with LocalStack(data_dir, "dev", durable=False) as again:
        assert again.state is not None and again.state.nats_url != "x"
        assert read_state(data_dir) == again.state


def test_full_stack_with_s3_and_temporal(data_dir: Path) -> None:
    with LocalStack(data_dir, "dev", with_s3=True, with_temporal=True, durable=False) as stack:
        state = stack.state
        assert state is not None
        assert set(state.pids) == {"nats", "postgres", "s3", "temporal"}
        assert stack.s3 is not None and stack.temporal is not None
        assert state.s3_url == stack.s3.url
        assert state.temporal_address == stack.temporal.address
        assert state.temporal_address.startswith("127.0.0.1:")
        assert (data_dir / "temporal" / "temporal.db").is_file()
        assert (data_dir / "logs" / "s3.log").is_file()
    assert_state_gone(state)


OWNER = """
import sys
from pathlib import Path
from ssmd.stack.local import LocalStack

with LocalStack(Path(sys.argv[1]), "dev", durable=False) as stack:
    print("up", flush=True)
    print("wait ended:", stack.wait(poll=0.1), flush=True)
print("clean exit", flush=True)
"""


def start_owner(data_dir: Path, script: str = OWNER) -> tuple[subprocess.Popen[str], StackState]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 90
    while (state := read_state(data_dir)) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.communicate(timeout=5)[0] if proc.poll() is not None else ""
            pytest.fail(f"owner process did not bring the stack up: {out}")
        time.sleep(0.05)
    return proc, state


def test_stop_stack_from_another_process_asks_the_owner(data_dir: Path) -> None:
    proc, state = start_owner(data_dir)
    try:
        assert state.owner_pid == proc.pid
        assert nats_answers(state.nats_url)
        stopped = stop_stack(state)
        out = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert stopped == ["owner"]  # the owner shut its servers down itself
    assert proc.returncode == 0
    assert "wait ended: SIGTERM" in out and "clean exit" in out
    assert_state_gone(state)


def test_stop_stack_kills_orphaned_servers(data_dir: Path) -> None:
    proc, state = start_owner(data_dir)
    os.kill(proc.pid, signal.SIGKILL)  # the owner dies without cleaning up
    proc.communicate(timeout=30)
    assert all(pid_alive(pid) for pid in state.pids.values())  # servers orphaned, running
    stopped = stop_stack(state)
    assert stopped == ["postgres", "nats"]
    assert_state_gone(state)


SLEEPY_OWNER = """
import sys, time
from pathlib import Path
from ssmd.stack.local import LocalStack

try:
    with LocalStack(Path(sys.argv[1]), "dev", durable=False):
        time.sleep(600)  # not in stack.wait(): SIGTERM must still unwind the `with`
except KeyboardInterrupt as exc:
    print("interrupted:", exc, flush=True)
"""


def test_sigterm_inside_with_block_still_stops_servers(data_dir: Path) -> None:
    proc, state = start_owner(data_dir, SLEEPY_OWNER)
    try:
        assert stop_stack(state) == ["owner"]
        out = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "interrupted: received SIGTERM" in out
    assert_state_gone(state)
