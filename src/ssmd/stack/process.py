"""One child process we own: started in its own process group, logged to a file,
checked for readiness, and always stopped — also when a test fails or at exit.

A server that outlives the test session (or `ssmd up`) holds ports and data files and
breaks the next run, so every start is registered and stopped by an atexit hook.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class ServerStartError(RuntimeError):
    """A server did not start or become ready; the message carries its log tail."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


def read_tail(path: Path, lines: int = 30, max_bytes: int = 16384) -> str:
    """The last `lines` lines of a log file (empty if it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def terminate(pid: int, sig: int = signal.SIGTERM, grace: float = 10.0) -> bool:
    """Stop the process group led by `pid` (a process we did not necessarily spawn).

    Sends `sig` to the leader, waits up to `grace` seconds, then SIGKILLs the whole group
    (so helpers a server forked die too). Returns True if the leader was running.
    """
    if not pid_alive(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    while pid_alive(pid) and time.monotonic() < deadline + 5:
        time.sleep(0.05)
    return True


_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


class ManagedProcess:
    """A subprocess in its own session whose stdout+stderr go to `log_path`.

    `stop_signal` is what asks the program to shut down cleanly (SIGTERM for most;
    Postgres wants SIGINT, its "fast" shutdown, which does not wait for clients).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: int | None = None,
        group: int | None = None,
        stop_signal: int = signal.SIGTERM,
        grace: float = 10.0,
    ) -> None:
        self.name = name
        self.argv = [os.fspath(a) for a in argv]
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.group = group
        self.stop_signal = stop_signal
        self.grace = grace
        self._popen: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> ManagedProcess:
        """Spawn the process (once); output is appended to the log file."""
        if self._popen is not None:
            raise RuntimeError(f"{self.name} already started (pid {self._popen.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%F %T')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            extra: dict[str, object] = {}
            if self.user is not None:
                extra = {"user": self.user, "group": self.group, "extra_groups": []}
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                **extra,  # type: ignore[arg-type]
            )
        with _live_lock:
            _live.add(self)
        return self

    def log_tail(self, lines: int = 30) -> str:
        return read_tail(self.log_path, lines)

    def wait_ready(self, check: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
        """Poll `check` until it returns True; on timeout or early exit stop the process
        and raise ServerStartError naming the server and showing the log tail."""
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            if not self.running:
                self._fail(f"{self.name} exited with code {self.returncode} before it was ready")
            try:
                if check():
                    return
            except Exception as exc:  # a refused connection is the normal "not yet"
                last_error = exc
            if time.monotonic() >= deadline:
                why = f" (last check error: {last_error!r})" if last_error else ""
                self.stop()
                self._fail(f"{self.name} not ready within {timeout:.1f}s{why}")
            time.sleep(interval)

    def _fail(self, message: str) -> None:
        tail = self.log_tail()
        raise ServerStartError(
            f"{message}; last lines of {self.log_path}:\n{tail or '(log is empty)'}", tail
        )

    def stop(self) -> int | None:
        """Stop cleanly (stop_signal, then SIGKILL to the group after `grace` seconds).

        Idempotent; returns the exit code (None if never started)."""
        with self._lock:
            popen = self._popen
            if popen is None:
                return None
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    popen.send_signal(self.stop_signal)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    popen.wait(self.grace)
            # kill whatever is left of the group: a hung leader, or children it forked
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
            code = popen.wait()
            with _live_lock:
                _live.discard(self)
            return code

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, running={self.running})"


def stop_all() -> None:
    """Stop every process still registered (atexit hook; also usable by signal handlers)."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.stop()


atexit.register(stop_all)
