"""Postgres metadata: connection + automatic migrations, and one store module per concept.

    from ssmd.meta import connect, envs, instruments, clients, keys, audit

    with connect(url) as conn:          # migrated; commits on success, rolls back on error
        version, created = envs.add_version(conn, "dev", spec, author="alice")
        clients.sync_clients(conn, "dev", spec_clients, actor="alice")

Stores never commit: the caller's transaction makes several changes (a version, its
clients, their audit entries) land together or not at all.
"""

from ssmd.meta import audit, clients, envs, instruments, keys
from ssmd.meta.db import MetaUnreachable, connect, redact_url
from ssmd.meta.migrate import MigrationError

__all__ = [
    "MetaUnreachable",
    "MigrationError",
    "audit",
    "clients",
    "connect",
    "envs",
    "instruments",
    "keys",
    "redact_url",
]
