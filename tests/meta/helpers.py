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


class Outcome:
    """What a CLI invocation gave: the exit code `ssmd` would return, stdout, stderr."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code = code
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"Outcome(code={self.code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def cli(*args: str) -> Outcome:
    """Run `ssmd ARGS` in-process; a CliError becomes its exit code and message, as
    `ssmd.cli.main.run` does for the real command."""
    from typer.testing import CliRunner

    from ssmd.cli.main import app
    from ssmd.cli.output import CliError

    result = CliRunner().invoke(app, list(args))
    exc = result.exception
    if isinstance(exc, CliError):
        message = f"error: {exc}" + (f"\nhint: {exc.hint}" if exc.hint else "")
        return Outcome(exc.code, result.stdout, result.stderr + message)
    if exc is not None and not isinstance(exc, SystemExit):
        raise exc
    return Outcome(result.exit_code, result.stdout, result.stderr)
