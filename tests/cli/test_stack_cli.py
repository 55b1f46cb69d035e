"""`ssmd up` / `status` / `down` as a newcomer runs them: real processes, real ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssmd.cli.stack import _cpu
from ssmd.ops.status import CPU_BOUND
from ssmd.stack.ports import port_open
from ssmd.stack.process import pid_alive
from ssmd.stack.state import read_state


def ssmd(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def start_up(envdir: Path, data: Path, seen: list[str] | None = None) -> subprocess.Popen[str]:
    """`ssmd up` in the background once it printed its last line; `seen` gets the output."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ssmd.cli.main",
            "up",
            "--env",
            "dev",
            "--dir",
            str(envdir),
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    deadline = time.monotonic() + 90
    seen = [] if seen is None else seen
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "stop       Ctrl-C" in line:
            return proc
    proc.kill()
    pytest.fail("ssmd up did not come up:\n" + "".join(seen))


def assert_all_gone(pids: dict[str, int], ports: list[int]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        any(pid_alive(p) for p in pids.values()) or any(port_open(p) for p in ports)
    ):
        time.sleep(0.2)
    assert {n: p for n, p in pids.items() if pid_alive(p)} == {}
    assert [p for p in ports if port_open(p)] == []


def test_up_status_show_down_then_restart_keeps_state(envdir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first_output: list[str] = []
    up = start_up(envdir, data, first_output)
    try:
        state = read_state(data)
        assert state is not None and state.env == "dev"
        ports = [p for ps in state.ports.values() for p in ps]
        assert set(state.pids) == {
            "nats", "postgres", "replay-sim", "connector-sim-0", "shipper", "reprocess", "gateway",
        }  # fmt: skip
        assert state.gateway_url == f"http://127.0.0.1:{state.ports['gateway'][0]}"
        assert port_open(state.ports["gateway"][0])
        assert "API key    ssmd_" in "".join(first_output)

        status = ssmd("status", "--data-dir", str(data), "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert {n: p["running"] for n, p in report["processes"].items()} == {
            "nats": True,
            "postgres": True,
            "replay-sim": True,
            "connector-sim-0": True,
            "shipper": True,
            "reprocess": True,
            "gateway": True,
        }
        assert report["gateway_url"] == state.gateway_url
        assert report["applied"]["version"] == 1
        heartbeat = connector_heartbeat(data)  # a share > 0 measured (it waits for one)
        assert heartbeat["cpu"] < CPU_BOUND and heartbeat["bottleneck"] == ""  # ~100 frames/s
        table = ssmd("status", "--data-dir", str(data))
        assert table.returncode == 0, table.stderr
        assert "cpu" in table.stdout  # the column the heartbeat's share is shown in

        shown = ssmd("env", "show", "dev", "--json", env={"SSMD_DATA_DIR": str(data)})
        assert shown.returncode == 0, shown.stderr
        stored = json.loads(shown.stdout)
        assert (stored["env"], stored["version"], stored["author"]) == ("dev", 1, "ssmd-up")
        assert stored["spec"]["feeds"]["sim"]["venue"] == "sim"

        second = ssmd("up", "--env", "dev", "--dir", str(envdir), "--data-dir", str(data))
        assert second.returncode == 3
        assert "already running" in second.stderr

        down = ssmd("down", "--data-dir", str(data))
        assert down.returncode == 0, down.stderr
        assert up.wait(timeout=30) == 0
        assert_all_gone(state.pids, ports)
        assert read_state(data) is None
    finally:
        up.kill()

    # Same data dir again: Postgres keeps its data, the identical definition is a no-op,
    # the admin key is not shown again (only its hash exists): `up` says how to make one.
    again: list[str] = []
    up = start_up(envdir, data, again)
    try:
        state = read_state(data)
        assert state is not None
        assert "ssmd_" not in "".join(line for line in again if "API key" in line)
        assert "ssmd key create --client dev-admin" in "".join(again)
        history = ssmd("env", "history", "dev", "--json", env={"SSMD_DATA_DIR": str(data)})
        assert [v["version"] for v in json.loads(history.stdout)] == [1]
        up.send_signal(signal.SIGINT)  # Ctrl-C
        assert up.wait(timeout=30) == 0
        assert_all_gone(state.pids, [p for ps in state.ports.values() for p in ps])
    finally:
        up.kill()


def connector_heartbeat(data: Path, timeout: float = 20.0) -> dict:
    """The sim connector's status heartbeat once it has one with a CPU share measured
    (the first heartbeat only starts the rates' window)."""
    deadline = time.monotonic() + timeout
    while True:
        out = ssmd("status", "--data-dir", str(data), "--json")
        components = json.loads(out.stdout)["components"]
        found = [c for c in components if c.get("key") == "connector.sim.0"]
        if found and found[0].get("cpu"):
            return found[0]
        assert time.monotonic() < deadline, f"no connector heartbeat with a cpu share: {found}"
        time.sleep(0.5)


def test_status_shows_a_connectors_cpu_with_what_bounds_it() -> None:
    assert _cpu({"cpu": 0.971, "bottleneck": "cpu"}) == "0.97 cpu-bound"
    assert _cpu({"cpu": 0.4, "bottleneck": "nats"}) == "0.40 nats-bound"
    assert _cpu({"cpu": 0.031, "bottleneck": ""}) == "0.03"
    assert _cpu({"frames_per_s": 5.0}) == ""  # not a connector (gateway, shipper, …)


def test_down_without_a_stack_is_harmless(tmp_path: Path) -> None:
    out = ssmd("down", "--data-dir", str(tmp_path))
    assert out.returncode == 0
    assert "no stack running" in out.stdout


def test_status_without_a_stack_exits_3(tmp_path: Path) -> None:
    out = ssmd("status", "--data-dir", str(tmp_path), "--json")
    assert out.returncode == 3
    assert "ssmd up" in out.stderr


def test_up_refuses_an_invalid_definition_before_starting_anything(
    envdir: Path, tmp_path: Path
) -> None:
    path = envdir / "dev.yaml"
    path.write_text(path.read_text().replace("replicas: 1", "replicas: 0"))
    out = ssmd("up", "--env", "dev", "--dir", str(envdir), "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 1
    assert "streams.replicas" in out.stderr
    assert not (tmp_path / "d").exists()
