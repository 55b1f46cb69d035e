"""Each real server starts, answers, and stops leaving no process and no open port.

These start their own servers (not the session fixtures) so they can stop them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nats
import psycopg
import pytest

from ssmd.stack.aio import run_async
from ssmd.stack.nats import GO_GC, NatsServer, go_runtime_env
from ssmd.stack.postgres import PostgresServer
from ssmd.stack.process import ServerStartError
from ssmd.stack.s3 import S3Server
from ssmd.stack.temporal import TemporalServer, describe_namespace
from ssmd.stack.users import DEFAULT_USER

from .helpers import assert_gone


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ssmd-test-server-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_nats_jetstream_round_trip_and_clean_stop(scratch: Path) -> None:
    server = NatsServer(scratch / "nats").start()
    pid = server.pid or 0
    assert server.url == f"nats://127.0.0.1:{server.port}"
    assert server.monitor_port != server.port

    async def go() -> tuple[bytes, int, str]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="MD_TEST_SIM", subjects=["md.test.sim.>"])
            sub = await nc.subscribe("md.test.sim.trade.BTC-USD")
            await js.publish("md.test.sim.trade.BTC-USD", b'{"price":"1.5"}')
            msg = await sub.next_msg(timeout=5)
            info = await js.stream_info("MD_TEST_SIM")
            return (
                msg.data,
                info.state.messages,
                nc.connected_url.netloc if nc.connected_url else "",
            )
        finally:
            await nc.close()

    data, count, netloc = asyncio.run(go())
    assert data == b'{"price":"1.5"}'
    assert count == 1
    assert netloc == f"127.0.0.1:{server.port}"
    assert (server.store_dir / "jetstream").is_dir()  # file storage under data_dir
    server.stop()
    server.stop()  # idempotent
    assert_gone(server, pid)
    assert "Server is ready" in server.log_path.read_text()


def test_nats_runs_with_the_go_gc_settings_unless_the_operator_set_them(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def environ(server: NatsServer) -> dict[str, str]:
        raw = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        return dict(item.decode().split("=", 1) for item in raw if b"=" in item)

    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with NatsServer(scratch / "a") as server:
        got = environ(server)
    assert got["GOGC"] == GO_GC == "400"
    assert got["GOMEMLIMIT"] == f"{ram // 4 // 2**20}MiB"
    assert got["PATH"] == os.environ["PATH"]  # the rest of the environment passes through

    monkeypatch.setenv("GOGC", "150")
    with NatsServer(scratch / "b") as server:
        got = environ(server)
    assert got["GOGC"] == "150"
    assert got["GOMEMLIMIT"] == f"{ram // 4 // 2**20}MiB"


def test_go_memory_limit_is_a_quarter_of_ram_with_a_floor() -> None:
    assert go_runtime_env({}, 24 * 2**30) == {"GOGC": "400", "GOMEMLIMIT": "6144MiB"}
    assert go_runtime_env({}, 100 * 2**20)["GOMEMLIMIT"] == "64MiB"  # never below 64 MiB
    mine = {"GOMEMLIMIT": "2GiB", "HOME": "/root"}
    assert go_runtime_env(mine, 24 * 2**30) == {"GOGC": "400", **mine}


def test_nats_port_taken_fails_with_name_and_log_tail(scratch: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = NatsServer(scratch / "nats", port=port)
        with pytest.raises(ServerStartError) as info:
            server.start(timeout=10)
    message = str(info.value)
    assert message.startswith("nats exited with code 1 before it was ready")
    assert "address already in use" in message.lower()
    assert not server.running


def test_postgres_select_persist_reuse_and_clean_stop(scratch: Path) -> None:
    server = PostgresServer(scratch / "pg", durable=False).start()
    pid = server.pid or 0
    assert server.url == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    with psycopg.connect(server.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('survives a restart')")
    if os.geteuid() == 0:  # dropped privileges to the unprivileged user
        status = Path(f"/proc/{pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        import pwd

        assert int(uid_line.split()[1]) == pwd.getpwnam(DEFAULT_USER).pw_uid
    server.stop()
    assert_gone(server, pid)

    initdb_runs = server.log_path.read_text().count("--- initdb")
    again = PostgresServer(scratch / "pg", durable=False).start()
    try:
        with psycopg.connect(again.url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("survives a restart",)]
        assert again.log_path.read_text().count("--- initdb") == initdb_runs == 1
    finally:
        again.stop()
    assert_gone(again, again.process.pid if again.process else 0)


def test_postgres_create_and_drop_database(scratch: Path) -> None:
    with PostgresServer(scratch / "pg", durable=False) as server:
        url = server.create_database("t_example")
        conn = psycopg.connect(url, autocommit=True)
        assert conn.execute("SELECT current_database()").fetchone() == ("t_example",)
        server.drop_database("t_example")  # forcibly, while this session is open
        with pytest.raises(psycopg.OperationalError, match="terminating connection"):
            conn.execute("SELECT 1")
        conn.close()
        with psycopg.connect(server.url) as conn:
            row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = 't_example'")
            assert row.fetchone() == (0,)


def test_s3_bucket_put_get_and_clean_stop(scratch: Path) -> None:
    import boto3

    server = S3Server(scratch / "s3").start()
    pid = server.pid or 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    s3 = boto3.client("s3", **server.credentials)
    s3.create_bucket(Bucket="ssmd-raw")
    key = "raw/dev/sim/2026-01-02/03/0-0-1.jsonl.zst"
    s3.put_object(Bucket="ssmd-raw", Key=key, Body=b"\x28\xb5\x2f\xfd payload")
    assert s3.get_object(Bucket="ssmd-raw", Key=key)["Body"].read() == b"\x28\xb5\x2f\xfd payload"
    listed = s3.list_objects_v2(Bucket="ssmd-raw", Prefix="raw/dev/")
    assert [o["Key"] for o in listed["Contents"]] == [key]
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["ssmd-raw"]
    server.stop()
    assert_gone(server, pid)


def test_temporal_namespace_and_clean_stop(scratch: Path) -> None:
    server = TemporalServer(scratch / "temporal").start()
    pid = server.pid or 0
    assert server.address == f"127.0.0.1:{server.port}"
    assert server.namespace == "default"
    assert run_async(describe_namespace(server.address, "default")) is True
    assert server.db_path.is_file()  # persisted to SQLite under data_dir
    server.stop()
    assert_gone(server, pid)


def test_readiness_timeout_stops_server_and_shows_log(scratch: Path) -> None:
    server = PostgresServer(scratch / "pg", durable=False)
    with pytest.raises(ServerStartError) as info:
        server.start(timeout=0.001)  # initdb runs first; the server itself cannot be ready
    message = str(info.value)
    assert message.startswith("postgres not ready within 0.0s (last check error:")
    assert f"last lines of {server.log_path}:" in message
    assert "bin/postgres -D" in info.value.log_tail  # the launch line from the log
    assert server.process is not None and server.process.pid is not None
    assert_gone(server, server.process.pid)


def test_nats_jetstream_data_survives_restart_on_another_port(scratch: Path) -> None:
    async def publish(url: str) -> None:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="KEEP", subjects=["keep.>"])
            await js.publish("keep.a", b"persisted")
        finally:
            await nc.close()

    async def read(url: str) -> tuple[int, bytes]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            info = await js.stream_info("KEEP")
            msg = await js.get_msg("KEEP", 1)
            return info.state.messages, msg.data or b""
        finally:
            await nc.close()

    with NatsServer(scratch / "nats") as first:
        asyncio.run(publish(first.url))
        first_port = first.port
    with NatsServer(scratch / "nats") as second:
        assert second.port != first_port
        assert asyncio.run(read(second.url)) == (1, b"persisted")
