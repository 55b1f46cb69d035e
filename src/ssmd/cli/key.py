"""`ssmd key`: API keys for clients (DESIGN.md §8).

Tokens look like ssmd_<id>_<secret>; only the SHA-256 of the secret is stored, so the
token is printed once — at create or rotate — and never again. Every change is audited.
"""

from __future__ import annotations

import re

import psycopg
import typer

from ssmd.cli.output import INVALID, CliError, JsonOpt, emit, err_console, print_json
from ssmd.cli.pg import ActorOpt, PgUrlOpt, actor_name, meta_session
from ssmd.meta import clients, keys
from ssmd.meta.keys import ApiKey, IssuedKey, KeyRefused
from ssmd.model.time import NS, format_ns, now_ns, parse_time

app = typer.Typer(
    help="API keys ssmd_<id>_<secret>: create, list, revoke, rotate. The secret is shown "
    "once; only its SHA-256 is stored.",
    no_args_is_help=True,
)

EnvOpt = typer.Option(
    None,
    "--env",
    "-e",
    envvar="SSMD_ENV",
    help="Environment of the client (default: $SSMD_ENV, else the one env that has it).",
    show_default=False,
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


def parse_duration(text: str) -> int:
    """'90d', '12h', '30m', '45s', '2w' or '0' → ns."""
    raw = text.strip()
    if raw == "0":
        return 0
    match = _DURATION.match(raw)
    if match is None:
        raise CliError(f"not a duration: {text!r}", INVALID, "use e.g. 30m, 12h, 90d, 2w")
    return int(match.group(1)) * _UNITS[match.group(2)] * NS


def parse_expiry(text: str | None, now: int) -> int | None:
    """A duration from now ('90d') or an absolute time (ISO-8601 or ns)."""
    if not text:
        return None
    if _DURATION.match(text.strip()):
        return now + parse_duration(text)
    try:
        return parse_time(text)
    except ValueError as exc:
        raise CliError(str(exc), INVALID, "or a duration from now like 90d") from None


def _env_of(conn: psycopg.Connection, client: str, env: str | None) -> str:
    if env:
        return env
    found = clients.envs_of(conn, client)
    if len(found) == 1:
        return found[0]
    if not found:
        raise CliError(
            f"no client {client!r} in the store",
            INVALID,
            "clients come from the environment definition: add it under `clients:` in "
            "environments/ENV.yaml and run `ssmd env apply ENV`",
        )
    raise CliError(
        f"client {client!r} exists in several environments: {', '.join(found)}",
        INVALID,
        "pass --env",
    )


def _view(key: ApiKey, now: int) -> dict[str, object]:
    return {
        "key_id": key.key_id,
        "env": key.env,
        "client": key.client_id,
        "scopes": list(key.scopes),
        "state": key.state(now),
        "created_ns": key.created_ns,
        "created_by": key.created_by,
        "expires_ns": key.expires_ns,
        "revoked_ns": key.revoked_ns,
        "replaced_by": key.replaced_by,
        "last_used_ns": key.last_used_ns,
    }


def _when(ns: int | None) -> str:
    return "" if ns is None else format_ns(ns)[:19] + "Z"


def _issued(issued: IssuedKey, as_json: bool, verb: str) -> None:
    """The token on stdout (alone, for scripts), the explanation on stderr."""
    if as_json:
        print_json(_view(issued.key, now_ns()) | {"token": issued.token})
        return
    key = issued.key
    err_console.print(
        f"{verb} key [bold]{key.key_id}[/] for client {key.client_id} ({key.env}), scopes "
        f"{', '.join(key.scopes)}"
        + (f", expires {_when(key.expires_ns)}" if key.expires_ns else "")
        + ". The secret is shown only now: store it safely.",
        highlight=False,
    )
    typer.echo(issued.token)


def _refused(exc: KeyRefused) -> CliError:
    return CliError(str(exc), INVALID)


@app.command()
def create(
    client: str = typer.Option(..., "--client", "-c", help="Client id (from the definition)."),
    scope: list[str] = typer.Option(
        None,
        "--scope",
        "-s",
        help="A scope (repeatable): admin operator read stream feedback "
        "(default: all the client's scopes). Must be held by the client.",
        show_default=False,
    ),
    expires: str | None = typer.Option(
        None,
        "--expires",
        help="Expiry: a duration from now (90d, 12h) or a time (ISO-8601 or ns).",
    ),
    env: str | None = EnvOpt,
    as_json: bool = JsonOpt,
    actor: str | None = ActorOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """Issue a key for a client and print it once (stdout); audited."""
    now = now_ns()
    expires_ns = parse_expiry(expires, now)
    with meta_session(pg_url) as conn:
        target_env = _env_of(conn, client, env)
        try:
            issued = keys.create(
                conn,
                target_env,
                client,
                actor_name(actor),
                scopes=scope or None,
                expires_ns=expires_ns,
                ts_ns=now,
            )
        except KeyRefused as exc:
            raise _refused(exc) from None
    _issued(issued, as_json, "created")


@app.command("list")
def list_cmd(
    client: str | None = typer.Option(None, "--client", "-c", help="Only this client's keys."),
    env: str | None = EnvOpt,
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """List keys (ids, never secrets) with their state and last use."""
    now = now_ns()
    with meta_session(pg_url) as conn:
        found = keys.list_keys(conn, env=env, client_id=client)
    emit(
        as_json,
        [_view(k, now) for k in found],
        "API keys",
        ["key id", "env", "client", "scopes", "state", "created", "expires", "last used"],
        [
            [
                k.key_id,
                k.env,
                k.client_id,
                ",".join(k.scopes),
                k.state(now),
                _when(k.created_ns),
                _when(k.expires_ns),
                _when(k.last_used_ns),
            ]
            for k in found
        ],
    )


@app.command()
def revoke(
    key_id: str = typer.Argument(..., help="The key id (the part after ssmd_)."),
    as_json: bool = JsonOpt,
    actor: str | None = ActorOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """Revoke a key now (it stops authenticating at once); audited."""
    with meta_session(pg_url) as conn:
        try:
            key = keys.revoke(conn, key_id, actor_name(actor))
        except KeyRefused as exc:
            raise _refused(exc) from None
    if as_json:
        print_json(_view(key, now_ns()))
    else:
        typer.echo(f"revoked key {key.key_id} (client {key.client_id}, {key.env})")


@app.command()
def rotate(
    key_id: str = typer.Argument(..., help="The key id to replace."),
    grace: str = typer.Option(
        "0",
        "--grace",
        help="Keep the old key valid this long (e.g. 1h) so clients can switch; 0 = revoke now.",
    ),
    as_json: bool = JsonOpt,
    actor: str | None = ActorOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """Issue a replacement key (printed once) and revoke the old one; audited."""
    grace_ns = parse_duration(grace)
    with meta_session(pg_url) as conn:
        try:
            issued = keys.rotate(conn, key_id, actor_name(actor), grace_ns=grace_ns)
        except KeyRefused as exc:
            raise _refused(exc) from None
    _issued(issued, as_json, f"rotated {key_id} →")
