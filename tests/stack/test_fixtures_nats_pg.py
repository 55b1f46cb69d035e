"""The session fixtures other tests build on: real NATS and Postgres, per-test isolation."""

from __future__ import annotations

import asyncio

import nats
import psycopg

from ssmd.stack.nats import NatsServer
from ssmd.stack.postgres import FreshDatabases, PostgresServer


def test_pg_url_is_a_fresh_empty_database(pg_server: PostgresServer, pg_url: str) -> None:
    dbname = pg_url.rsplit("/", 1)[1]
    assert dbname.startswith("t_")
    assert pg_url.startswith(f"postgresql://postgres@127.0.0.1:{pg_server.port}/")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (dbname,)
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (41), (1)")
        assert conn.execute("SELECT sum(x) FROM t").fetchone() == (42,)


def test_pg_url_databases_are_dropped_between_tests(pg_server: PostgresServer, pg_url: str) -> None:
    with psycopg.connect(pg_server.url) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'").fetchall()
    names = {r[0] for r in rows}
    # this test's database, at most one prepared ahead for the next test, no leftovers
    assert pg_url.rsplit("/", 1)[1] in names
    assert len(names) <= 2


def test_fresh_databases_are_distinct_and_dropped(pg_server: PostgresServer) -> None:
    databases = FreshDatabases(pg_server, prefix="f_")
    try:
        (a, url_a), (b, url_b) = databases.take(), databases.take()
        assert a != b and a.startswith("f_") and url_a.endswith("/" + a) and url_b.endswith(b)
        with psycopg.connect(url_b) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (b,)
        databases.give_back(a)
        databases.give_back(b)
    finally:
        databases.close()
    with psycopg.connect(pg_server.url) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'f\\_%'")
        assert left.fetchall() == []  # including the one prepared ahead


def test_nats_url_has_jetstream(nats_server: NatsServer, nats_url: str) -> None:
    assert nats_url == nats_server.url

    async def go() -> tuple[bytes, int, int]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="T_FIXTURE", subjects=["t.fixture.>"])
            ack = await js.publish("t.fixture.a", b"hello", headers={"Nats-Msg-Id": "m1"})
            dup = await js.publish("t.fixture.a", b"hello", headers={"Nats-Msg-Id": "m1"})
            info = await js.stream_info("T_FIXTURE")
            msg = await js.get_msg("T_FIXTURE", ack.seq)
            return msg.data or b"", info.state.messages, int(dup.duplicate or 0)
        finally:
            await nc.close()

    data, count, duplicate = asyncio.run(go())
    assert data == b"hello"
    assert count == 1  # the second publish was deduplicated by Nats-Msg-Id
    assert duplicate == 1


def test_nats_url_streams_are_reset_between_tests(nats_url: str) -> None:
    async def names() -> list[str]:
        nc = await nats.connect(nats_url)
        try:
            return [s.config.name or "" for s in await nc.jetstream().streams_info()]
        finally:
            await nc.close()

    assert asyncio.run(names()) == []
