"""Meta-store fixtures: a migrated connection to a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from ssmd.meta import connect


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection]:
    """A migrated connection (autocommit off) to this test's empty database."""
    connection = connect(pg_url)
    try:
        yield connection
    finally:
        connection.close()
