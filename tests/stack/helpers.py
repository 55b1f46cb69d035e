"""Assertions shared by the stack tests: a stopped server leaves nothing behind."""

from __future__ import annotations

import subprocess

from ssmd.stack.ports import port_open
from ssmd.stack.process import pid_alive
from ssmd.stack.server import Server


def listening_pids() -> set[int]:
    """pids of every process with a listening TCP socket (from `ss`)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    pids: set[int] = set()
    for part in out.split("pid=")[1:]:
        pids.add(int(part.split(",", 1)[0]))
    return pids


def assert_gone(server: Server, pid: int) -> None:
    """The server's process is gone and none of its ports accept connections."""
    assert not server.running
    assert not pid_alive(pid), f"{server.name} pid {pid} still alive"
    assert pid not in listening_pids()
    for port in server.ports():
        assert not port_open(port), f"{server.name} port {port} still open"
