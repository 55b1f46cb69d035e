"""What every embedded server shares: ports, log file, start with retry, stop.

Subclasses say how to launch (`_argv`) and how to know it is ready (`_ready`); this
class owns the process lifecycle so all servers behave the same in tests and `ssmd up`.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from ssmd.stack.ports import free_port
from ssmd.stack.process import ManagedProcess, ServerStartError

_BIND_ERRORS = ("address already in use", "bind: address", "could not bind", "errno 98")


class Server:
    """Base class: one server process under `data_dir`, logging to `<log_dir>/<name>.log`."""

    name = "server"
    stop_signal: int = signal.SIGTERM
    start_timeout = 30.0
    grace = 10.0

    def __init__(self, data_dir: Path, port: int | None = None, log_dir: Path | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.log_dir = Path(log_dir).resolve() if log_dir else self.data_dir
        self._pinned = port
        self.port = port or 0
        self.process: ManagedProcess | None = None
        self.startup_seconds = 0.0

    # subclass hooks -------------------------------------------------------------
    def _allocate_ports(self) -> None:
        """Choose ports for this attempt (the main one unless pinned)."""
        self.port = self._pinned or free_port()

    def _prepare(self) -> None:
        """One-time work before the first launch (directories, initdb, …)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _process_kwargs(self) -> dict[str, object]:
        return {}

    # lifecycle -------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def ports(self) -> list[int]:
        """Every TCP port this server listens on (to check they are released)."""
        return [self.port]

    def start(self, timeout: float | None = None) -> Self:
        """Launch and wait until ready; retries on a lost port race unless pinned."""
        if self.running:
            return self
        began = time.monotonic()
        self._prepare()
        attempts = 1 if self._pinned else 3
        for attempt in range(attempts):
            self._allocate_ports()
            self.process = ManagedProcess(
                self.name,
                self._argv(),
                self.log_path,
                stop_signal=self.stop_signal,
                grace=self.grace,
                **self._process_kwargs(),  # type: ignore[arg-type]
            ).start()
            try:
                self.process.wait_ready(self._ready, timeout or self.start_timeout)
            except ServerStartError as exc:
                lost_race = any(e in exc.log_tail.lower() for e in _BIND_ERRORS)
                if lost_race and attempt + 1 < attempts:
                    continue
                raise
            break
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop the process (idempotent)."""
        if self.process is not None:
            self.process.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self.port}, pid={self.pid}, dir={self.data_dir})"
