"""`ssmd nats-auth render`: the nats-server authorization block for direct NATS clients.

Passwords are not in the definition (it holds no secrets). `--password USER=REF` takes
one from a secret reference (`env:`, `file:`, `k8s:`), so re-renders are stable; any
user without one gets a generated password, printed once (stderr, or `generated` in
`--json`) and only ever written into the config, which is then a secret itself
(`-o FILE` writes it with mode 0600).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import typer

from ssmd.bus.natsauth import SERVICE_USER, build
from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import JsonOpt, fail, print_json
from ssmd.storage.secrets import SecretError, resolve_secret

app = typer.Typer(help="nats-server users and subject permissions from entitlements.")


def _passwords(users: list[str], refs: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """All passwords, and the generated ones (to show once)."""
    given: dict[str, str] = {}
    for item in refs:
        user, sep, ref = item.partition("=")
        if not sep or not user or not ref:
            fail(f"--password {item!r}: expected USER=REF (e.g. reader=env:NATS_PW_READER)", 2)
        if user not in users:
            fail(f"--password {user}: no such user", hint=f"users: {', '.join(users)}")
        try:
            given[user] = resolve_secret(ref, field=f"--password {user}")
        except SecretError as exc:
            fail(str(exc), hint=exc.hint)
    generated = {u: secrets.token_urlsafe(24) for u in users if u not in given}
    return {**given, **generated}, generated


@app.command("render")
def render_cmd(
    env_name: str = typer.Option(..., "--env", help="Environment name or YAML path."),
    password: list[str] = typer.Option(
        [], "--password", help="USER=REF: the user's password from a secret reference."
    ),
    service_user: str = typer.Option(
        SERVICE_USER, "--service-user", help="User the ssmd components connect as."
    ),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the config here."),
    as_json: bool = JsonOpt,
    directory: Path | None = DirOpt,
) -> None:
    """Render an `authorization { users = [...] }` block; `include` it in nats-server.conf."""
    env = load_env(env_name, directory)
    auth = build(env, service_user=service_user)
    passwords, generated = _passwords([u.user for u in auth.users], password)
    text = auth.config(passwords)
    if output is not None:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(output, 0o600)
    if as_json:
        doc = auth.to_json()
        doc["generated"] = generated
        if output is None:
            doc["config"] = text
        print_json(doc)
        return
    if output is None:
        sys.stdout.write(text)
    for client, why in auth.skipped.items():
        typer.echo(f"# no user for client {client}: {why}", err=True)
    for u in auth.users:
        for note in u.notes:
            typer.echo(f"# {u.user}: {note}", err=True)
    if generated:
        typer.echo("# generated passwords (shown once; give each to its client):", err=True)
        for user, pw in generated.items():
            typer.echo(f"{user}\t{pw}", err=True)
