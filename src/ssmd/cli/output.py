"""How every command talks back: exit codes, errors, and `--json` output.

Exit codes are a contract for scripts: 0 ok, 1 invalid input, 2 usage error,
3 a dependency (Postgres, NATS, object store) is unreachable.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import msgspec
import typer
from rich.console import Console
from rich.table import Table

OK, INVALID, USAGE, UNREACHABLE = 0, 1, 2, 3

console = Console()
err_console = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="Print one JSON document instead of a table.")


class CliError(Exception):
    """An error the CLI reports as a message and an exit code, never a traceback."""

    def __init__(self, message: str, code: int = INVALID, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


class Unreachable(CliError):
    """A dependency the command needs is down; the hint says how to start it."""

    def __init__(self, what: str, where: str, error: object) -> None:
        super().__init__(
            f"{what} unreachable at {where}: {error}",
            UNREACHABLE,
            "start the local stack with `ssmd up` (or `make up`), or point "
            f"{'SSMD_PG_URL' if what == 'Postgres' else 'SSMD_NATS_URL'} at a running server",
        )


def fail(message: str, code: int = INVALID, hint: str = "") -> NoReturn:
    raise CliError(message, code, hint)


def print_json(obj: Any) -> None:
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")
    sys.stdout.flush()


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


def emit(as_json: bool, obj: Any, title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """One call for both output forms of a read command."""
    if as_json:
        print_json(obj)
    else:
        print_table(title, columns, rows)
