"""A real capture shared by the history tests: replay server (synthetic `sim`) →
Connector → journal + JetStream, once per package; the stream is read back at once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from tests.bus.helpers import read_stream, wait_for

from ssmd import spec
from ssmd.capture.connector import Connector, Options
from ssmd.replay.server import ReplayServer
from ssmd.stack.nats import NatsServer

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD"]
STREAM = "MD_DEV_SIM"


def dev(data_dir: Path) -> spec.Environment:
    env = spec.load(REPO / "environments" / "dev.yaml")
    storage = msgspec.structs.replace(env.storage, data_dir=str(data_dir))
    return msgspec.structs.replace(env, storage=storage)


def capture(root: Path, nats_url: str, seconds: float, seed: int = 7, during=None) -> None:
    """Run a connector for `seconds` after its first book; `during()` (sync) runs in a
    thread half-way through, while the connector keeps capturing."""

    async def main() -> None:
        async with ReplayServer(synthetic="sim", symbols=SYMBOLS, seed=seed, rate=3000) as rs:
            options = Options(root, nats_url, ws_url=rs.url, rest_url=rs.rest_url)
            connector = Connector(dev(root), "sim", options=options)
            stop = asyncio.Event()
            task = asyncio.create_task(connector.run(stop))
            await wait_for(lambda: connector.records.get("book", 0) > 0, timeout=15)
            await asyncio.sleep(seconds / 2)
            if during is not None:
                await asyncio.to_thread(during)
            await asyncio.sleep(seconds / 2)
            stop.set()
            await asyncio.wait_for(task, 60)

    asyncio.run(main())


@dataclass
class Captured:
    root: Path
    stream: list[tuple[str | None, bytes]]


@pytest.fixture(scope="package")
def captured(nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("capture")
    try:
        capture(root, nats_server.url, 2.0)
        stream = asyncio.run(read_stream(nats_server.url, STREAM))
    finally:
        nats_server.reset_jetstream()
    return Captured(root, stream)
