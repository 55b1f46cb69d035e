"""The local stack `ssmd up` runs: NATS + Postgres (optionally S3 and Temporal) under one
data directory, advertised to other commands through the state file.

Layout: <data_dir>/{nats,postgres,s3,temporal}/ for each server's data and
<data_dir>/logs/<server>.log for its output; <data_dir>/stack.json while it runs.
`stop_stack` is the other half, for `ssmd down` in another process.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ssmd.stack.nats import NatsServer
from ssmd.stack.ports import wait_port_closed
from ssmd.stack.postgres import PostgresServer
from ssmd.stack.process import pid_alive, terminate
from ssmd.stack.s3 import S3Server
from ssmd.stack.server import Server
from ssmd.stack.state import StackState, clear_state, read_state, write_state
from ssmd.stack.temporal import TemporalServer


class StackAlreadyRunning(RuntimeError):
    """A live stack already owns this data directory."""


class LocalStack:
    """Context manager: start the servers, write the state file; on exit stop them all
    and remove the state file. `ports` pins ports by server name (else free ones)."""

    def __init__(
        self,
        data_dir: Path,
        env: str,
        *,
        with_s3: bool = False,
        with_temporal: bool = False,
        ports: Mapping[str, int] | None = None,
        durable: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.env = env
        ports = ports or {}
        logs = self.data_dir / "logs"
        self.nats = NatsServer(self.data_dir / "nats", ports.get("nats"), log_dir=logs)
        self.postgres = PostgresServer(
            self.data_dir / "postgres", ports.get("postgres"), log_dir=logs, durable=durable
        )
        self.s3 = S3Server(self.data_dir / "s3", ports.get("s3"), log_dir=logs) if with_s3 else None
        self.temporal = (
            TemporalServer(self.data_dir / "temporal", ports.get("temporal"), log_dir=logs)
            if with_temporal
            else None
        )
        self.state: StackState | None = None
        self._previous_sigterm: Any = None

    @property
    def servers(self) -> dict[str, Server]:
        """Servers in start order (stopped in reverse)."""
        found: dict[str, Server | None] = {
            "nats": self.nats,
            "postgres": self.postgres,
            "s3": self.s3,
            "temporal": self.temporal,
        }
        return {name: server for name, server in found.items() if server is not None}

    @property
    def startup_seconds(self) -> dict[str, float]:
        return {name: server.startup_seconds for name, server in self.servers.items()}

    def start(self) -> StackState:
        """Start every server (stopping those already up if one fails), write the state."""
        existing = read_state(self.data_dir)
        if existing is not None:
            alive = {n: p for n, p in existing.pids.items() if pid_alive(p)}
            if alive:
                raise StackAlreadyRunning(
                    f"a stack is already running in {self.data_dir} (pids {alive}); "
                    "stop it with `ssmd down` first"
                )
            clear_state(self.data_dir)  # left behind by a stack that died
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            for server in self.servers.values():
                server.start()
        except BaseException:
            self.stop()
            raise
        self.state = StackState(
            env=self.env,
            data_dir=str(self.data_dir),
            nats_url=self.nats.url,
            pg_url=self.postgres.url,
            s3_url=self.s3.url if self.s3 else "",
            temporal_address=self.temporal.address if self.temporal else "",
            pids={name: s.pid for name, s in self.servers.items() if s.pid is not None},
            ports={name: s.ports() for name, s in self.servers.items()},
            started_ns=time.time_ns(),
            owner_pid=os.getpid(),
        )
        write_state(self.state)
        return self.state

    def stop(self) -> None:
        """Stop every server (reverse order), wait for their ports, clear the state file."""
        for server in reversed(self.servers.values()):
            server.stop()
        for server in self.servers.values():
            if server.process is not None:
                for port in server.ports():
                    wait_port_closed(port, timeout=5)
        current = read_state(self.data_dir)
        if current is None or current.owner_pid in (0, os.getpid()):
            clear_state(self.data_dir)
        self.state = None

    def dead_servers(self) -> list[str]:
        """Names of servers that were started and have since exited."""
        return [n for n, s in self.servers.items() if s.process is not None and not s.running]

    def wait(self, poll: float = 0.5, tick: Callable[[], object] | None = None) -> str:
        """Block until SIGINT/SIGTERM arrives or a server dies; returns which happened.

        For `ssmd up` in the foreground: SIGTERM (from `ssmd down`) and Ctrl-C both end
        the wait so the caller's `with` block exits and stops everything cleanly.
        `tick` runs every poll (the caller supervises its own processes there).
        Must be called from the main thread (signal handlers)."""
        stop = threading.Event()
        reason: list[str] = []

        def handler(signum: int, _frame: object) -> None:
            reason.append(signal.Signals(signum).name)
            stop.set()

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop.wait(poll):
                dead = self.dead_servers()
                if dead:
                    return f"server exited: {', '.join(dead)}"
                if tick is not None:
                    tick()
            return reason[0] if reason else "stopped"
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def __enter__(self) -> Self:
        # SIGTERM's default action kills us without running `finally`/atexit, orphaning
        # the servers; inside the `with` it raises KeyboardInterrupt instead, like Ctrl-C.
        self._previous_sigterm = None
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self.start()
        except BaseException:
            self._restore_sigterm()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            self._restore_sigterm()

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


# What each server's command line contains: a pid from the state file is only signalled
# if it still runs that program (pids are reused after a reboot or a long time).
_MARKERS = {
    "nats": "nats-server",
    "postgres": "postgres",
    "s3": "moto.server",
    "temporal": "temporal",
    "connector": "connector",
    "replay": "replay-server",
    "shipper": "shipper",
}
_STOP_SIGNALS = {"postgres": signal.SIGINT}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_stack(state: StackState, grace: float = 15.0) -> list[str]:
    """Stop a stack started by another process (for `ssmd down`); returns what it stopped.

    First asks the owner (`ssmd up`) to shut down with SIGTERM so it cleans up itself;
    then stops any server still running (its stop signal, SIGKILL after `grace`), waits
    until every port is free, and removes the state file.
    """
    stopped: list[str] = []
    owner = state.owner_pid
    owner_cmd = _cmdline(owner) if owner else ""
    is_owner = "python" in owner_cmd or "ssmd" in owner_cmd  # not a reused pid
    if owner and owner != os.getpid() and pid_alive(owner) and is_owner:
        os.kill(owner, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while pid_alive(owner) and time.monotonic() < deadline:
            time.sleep(0.05)
        stopped.append("owner")
    for name, pid in reversed(state.pids.items()):
        marker = _MARKERS.get(name.split("-", 1)[0], name)
        if pid_alive(pid) and marker in _cmdline(pid):
            terminate(pid, _STOP_SIGNALS.get(name, signal.SIGTERM), grace)
            stopped.append(name)
    busy = [
        p for ports in state.ports.values() for p in ports if not wait_port_closed(p, timeout=5)
    ]
    clear_state(Path(state.data_dir))
    if busy:
        raise RuntimeError(f"stack stopped but ports still in use: {busy}")
    return stopped
