"""Session-wide test fixtures.

The shared fixture corpus (real recorded exchange messages) lives outside the repo;
tests find it through SSMD_FIXTURES (default ../shared/fixtures beside the checkout)
and skip, with the reason shown, where it is absent.

Real servers (DESIGN.md §9): NATS, Postgres, an S3-compatible server and Temporal are
started lazily, once per session, each in its own temp dir that is removed at the end
even when tests fail. Tests mostly want the function-scoped helpers:

- `pg_url`: a fresh empty database for this test (dropped afterwards);
- `nats_url`: the session NATS server, with JetStream emptied after the test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from ssmd.stack.nats import NatsServer
from ssmd.stack.postgres import FreshDatabases, PostgresServer
from ssmd.stack.s3 import S3Server
from ssmd.stack.server import Server
from ssmd.stack.temporal import TemporalServer

REPO = Path(__file__).resolve().parents[1]

S = TypeVar("S", bound=Server)


def corpus_dir() -> Path:
    return Path(os.environ.get("SSMD_FIXTURES", REPO.parent / "shared" / "fixtures")).resolve()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared fixture corpus; skips the test (visibly) when it is not there."""
    path = corpus_dir()
    if not (path / "README.md").exists():
        pytest.skip(f"fixture corpus not found at {path} (set SSMD_FIXTURES)")
    return path


# --- real servers ------------------------------------------------------------------


@contextmanager
def running(server: S) -> Iterator[S]:
    """Start `server`; always stop it and remove its data dir, whatever happens."""
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)


def temp_dir(name: str) -> Path:
    """A private temp dir (not pytest's tmp_path, which is kept after the run)."""
    return Path(tempfile.mkdtemp(prefix=f"ssmd-test-{name}-"))


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """NATS with JetStream for the whole session (`.url`)."""
    with running(NatsServer(temp_dir("nats"))) as server:
        yield server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A throw-away Postgres cluster for the whole session (`.url` is the superuser's)."""
    with running(PostgresServer(temp_dir("pg"), durable=False)) as server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3-compatible server (moto) for the session: `.url`, `.access_key`,
    `.secret_key`, `.region`, or `.credentials` as boto3 keyword arguments."""
    with running(S3Server(temp_dir("s3"))) as server:
        yield server


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[TemporalServer]:
    """Temporal dev server for the session: `.address` (host:port), `.namespace`."""
    with running(TemporalServer(temp_dir("temporal"))) as server:
        yield server


@pytest.fixture(scope="session")
def _fresh_databases(pg_server: PostgresServer) -> Iterator[FreshDatabases]:
    databases = FreshDatabases(pg_server)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def pg_url(_fresh_databases: FreshDatabases) -> Iterator[str]:
    """URL of a fresh, empty database (`t_<random>`) for this test only; dropped
    (forcibly, even with connections open) afterwards."""
    name, url = _fresh_databases.take()
    try:
        yield url
    finally:
        _fresh_databases.give_back(name)


@pytest.fixture
def nats_url(nats_server: NatsServer) -> Iterator[str]:
    """URL of the session NATS server; every stream/KV/object store is deleted afterwards
    so tests do not see each other's JetStream state."""
    yield nats_server.url
    nats_server.reset_jetstream()
