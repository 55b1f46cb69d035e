"""ssmd's own processes under `ssmd up`: a replay server for each `sim` feed (the offline
default venue), a connector for every shard of every enabled feed, the shipper, the
periodic reprocessor and the gateway — started after the definition is applied,
restarted with capped backoff when they die, stopped on exit.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ssmd.replay.process import ReplayProcess
from ssmd.spec import Environment
from ssmd.stack.ports import LOOPBACK, free_port
from ssmd.stack.process import ManagedProcess

SIM_RATE = 200.0
"""Frames per second of the local synthetic venue: lively, yet idle for a homelab."""
SIM_SPARE = ("ADA-USD", "XRP-USD", "DOGE-USD")
"""Symbols the sim venue also lists, so `ssmd feed add-instrument sim ADA-USD` +
`ssmd env apply dev` hot-reloads without restarting the venue (the README tour)."""
MAX_BACKOFF_S = 30.0
REPROCESS_EVERY_S = 600.0
"""Seconds between reprocess passes (each redoes the last REPROCESS_LOOKBACK_H hours)."""
REPROCESS_LOOKBACK_H = 2


@dataclass
class Service:
    name: str
    process: ManagedProcess
    restarts: int = 0
    next_start: float = 0.0
    history: list[int | None] = field(default_factory=list)
    """Exit codes of earlier runs (newest last)."""


class Services:
    def __init__(
        self,
        env: Environment,
        env_file: Path,
        data_dir: Path,
        nats_url: str,
        pg_url: str,
        *,
        sim_rate: float = SIM_RATE,
        reprocess_every: float = REPROCESS_EVERY_S,
        gateway_port: int | None = None,
    ) -> None:
        self.env = env
        self.sim_rate = sim_rate
        self.reprocess_every = reprocess_every
        self.gateway_port = gateway_port or free_port()
        self.env_file = env_file.resolve()
        self.data_dir = data_dir
        self.nats_url = nats_url
        self.pg_url = pg_url
        self.logs = data_dir / "logs"
        self.replays: dict[str, ReplayProcess] = {}
        self.services: dict[str, Service] = {}

    def start(self) -> None:
        """Replay servers first (connectors need their URLs), then the connectors, the
        shipper (raw segments to the object store), the reprocessor (0 = off), and the
        gateway last (it serves what the others produce)."""
        for name, feed in self.env.feeds.items():
            if feed.enabled and feed.venue == "sim":
                replay = ReplayProcess(
                    self.logs / f"replay-{name}.log",
                    synthetic="sim",
                    symbols=list(dict.fromkeys([*feed.instruments, *SIM_SPARE])),
                    seed=1,
                    rate=self.sim_rate,
                )
                self.replays[name] = replay.start()
        for name, feed in self.env.feeds.items():
            if not feed.enabled:
                continue
            for shard in range(feed.shards):
                service = f"connector-{name}-{shard}"
                argv = [
                    sys.executable, "-m", "ssmd.cli.main", "connector",
                    "--env", str(self.env_file), "--feed", name,
                    "--shard", f"{shard}/{feed.shards}", "--nats-url", self.nats_url,
                    "--data-dir", str(self.data_dir),
                ]  # fmt: skip
                if name in self.replays:
                    replay = self.replays[name]
                    argv += ["--url", replay.url, "--rest-url", replay.rest_url]
                self._add(service, argv)
        self._add(
            "shipper",
            [
                sys.executable, "-m", "ssmd.cli.main", "shipper", "--env", str(self.env_file),
                "--data-dir", str(self.data_dir), "--pg-url", self.pg_url,
                "--nats-url", self.nats_url, "--metrics-port", "-1",
            ],
        )  # fmt: skip
        if self.reprocess_every > 0:
            self._add(
                "reprocess",
                [
                    sys.executable, "-m", "ssmd.stack.reprocessor", "--env", str(self.env_file),
                    "--data-dir", str(self.data_dir), "--every", str(self.reprocess_every),
                    "--lookback", str(REPROCESS_LOOKBACK_H),
                ],
            )  # fmt: skip
        self._add(
            "gateway",
            [
                sys.executable, "-m", "ssmd.cli.main", "gateway", "--env", str(self.env_file),
                "--host", LOOPBACK, "--port", str(self.gateway_port), "--pg-url", self.pg_url,
                "--nats-url", self.nats_url, "--data-dir", str(self.data_dir),
                "--log-level", "WARNING",
            ],
        )  # fmt: skip

    @property
    def gateway_url(self) -> str:
        return f"http://{LOOPBACK}:{self.gateway_port}"

    def _add(self, name: str, argv: list[str]) -> None:
        process = ManagedProcess(name, argv, self.logs / f"{name}.log", grace=30)
        self.services[name] = Service(name, process.start())

    def supervise(self) -> list[str]:
        """Restart what died (backoff 1, 2, 4 … 30 s); returns the names restarted now."""
        now = time.monotonic()
        restarted = []
        for service in self.services.values():
            process = service.process
            if process.running:
                continue
            if service.next_start == 0.0:
                service.history.append(process.returncode)
                delay = min(MAX_BACKOFF_S, 2.0**service.restarts)
                service.next_start = now + delay
            elif now >= service.next_start:
                service.restarts += 1
                service.next_start = 0.0
                process.start()
                restarted.append(service.name)
        return restarted

    def pids(self) -> dict[str, int]:
        out = {name: s.process.pid for name, s in self.services.items() if s.process.pid}
        for name, replay in self.replays.items():
            if replay.proc.pid:
                out[f"replay-{name}"] = replay.proc.pid
        return out  # type: ignore[return-value]

    def stop(self) -> None:
        """Connectors first (they drain to JetStream), then the venues they read."""
        for service in self.services.values():
            service.process.stop()
        for replay in self.replays.values():
            replay.stop()
