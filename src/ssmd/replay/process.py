"""The replay server as a child process (what `ssmd up` and end-to-end tests start).

The child prints one JSON line `{"event": "listening", "url": …, "rest_url": …}` on
stdout when it accepts connections; `ReplayProcess` waits for that line in its log —
in the part this start appended: logs are appended to, and an earlier run's line names
a port nobody listens on any more (a restarted `ssmd up`, a bench step reusing a log
name, whose connector then retried a dead port for ever).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ssmd.stack.process import ManagedProcess, ServerStartError

__all__ = ["ReplayProcess", "replay_command"]


def replay_command(
    recordings: Sequence[str | Path] = (),
    *,
    synthetic: str | None = None,
    symbols: Sequence[str] = (),
    seed: int = 0,
    rate: float = 0.0,
    speed: float = 1.0,
    faults: str = "",
    port: int = 0,
    venue: str | None = None,
    depth: int | None = None,
    prebuild: int = 0,
    python: str = sys.executable,
) -> list[str]:
    """argv for `ssmd replay-server` with these options (run with this interpreter)."""
    argv = [python, "-m", "ssmd.cli.main", "replay-server", "--port", str(port)]
    for rec in recordings:
        argv += ["--recording", str(rec)]
    if synthetic:
        argv += ["--synthetic", synthetic, "--symbols", ",".join(symbols), "--seed", str(seed),
                 "--rate", str(rate)]  # fmt: skip
    if speed != 1.0:
        argv += ["--speed", str(speed)]
    if faults:
        argv += ["--faults", faults]
        if not synthetic:
            argv += ["--seed", str(seed)]  # the faults' RNG
    if venue:
        argv += ["--venue", venue]
    if depth:
        argv += ["--depth", str(depth)]
    if prebuild:
        argv += ["--prebuild", str(prebuild)]
    return argv


class ReplayProcess:
    """`with ReplayProcess(log_path, synthetic="sim", symbols=[...]) as rp: rp.url`."""

    def __init__(self, log_path: Path, **options: object) -> None:
        self.log_path = log_path
        self.proc = ManagedProcess("replay-server", replay_command(**options), log_path)  # type: ignore[arg-type]
        self.url = ""
        self.rest_url = ""
        self._log_from = 0
        """Log size before this start: the listening line is after it."""

    def start(self, timeout: float = 30.0) -> ReplayProcess:
        self._log_from = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc.start()
        self.proc.wait_ready(self._ready, timeout)
        return self

    def _ready(self) -> bool:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_from)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return False
        for line in text.splitlines():
            if line.startswith("{") and '"listening"' in line:
                doc = json.loads(line)
                if doc.get("event") == "listening":
                    self.url, self.rest_url = doc["url"], doc["rest_url"]
                    return True
        if not self.proc.running:
            raise ServerStartError("replay server exited", self.proc.log_tail())
        return False

    def stop(self) -> int | None:
        return self.proc.stop()

    def __enter__(self) -> ReplayProcess:
        return self if self.proc.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
