"""Helpers shared by the meta and CLI tests."""

from __future__ import annotations

import psycopg
from psycopg import sql


def all_text(conn: psycopg.Connection) -> str:
    """Every value in every user table, as text: for 'the secret is nowhere' checks."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
    ]
    dump = []
    for table in tables:
        for row in conn.execute(
            sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))
        ).fetchall():
            dump.append(row[0])
    return "\n".join(dump)
