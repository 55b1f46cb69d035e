"""`ssmd env`: create, validate, diff, promote and describe environment definitions.

Definitions live in an environments directory (`--dir`, `SSMD_ENV_DIR`, default
./environments); any command taking NAME also takes a path to a .yaml file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import typer

from ssmd import spec
from ssmd.cli.output import INVALID, USAGE, CliError, JsonOpt, print_json
from ssmd.spec.edit import EditError, dump, promote, write_atomic
from ssmd.spec.errors import InvalidSpec, SpecError
from ssmd.spec.yamlsrc import parse

app = typer.Typer(
    help="Environment definitions (environments/NAME.yaml): create, validate, diff, promote, "
    "schema. Every edit validates first and leaves an invalid result unwritten.",
    no_args_is_help=True,
)

TEMPLATES = ("minimal", "dev", "prod")
DEFAULT_DIR = "environments"
DirOpt = typer.Option(
    None,
    "--dir",
    envvar="SSMD_ENV_DIR",
    help="Environments directory [default: ./environments].",
    show_default=False,
)


def env_dir(override: Path | str | None = None) -> Path:
    """--dir, else $SSMD_ENV_DIR, else ./environments."""
    return Path(override or os.environ.get("SSMD_ENV_DIR") or DEFAULT_DIR)


def env_path(name_or_path: str, directory: Path | str | None = None) -> Path:
    """A NAME ('dev') -> DIR/dev.yaml; anything that looks like a path is used as is."""
    if (
        "/" in name_or_path
        or name_or_path.endswith((".yaml", ".yml"))
        or name_or_path in (".", "..")
    ):
        return Path(name_or_path)
    return env_dir(directory) / f"{name_or_path}.yaml"


def existing(name_or_path: str, directory: Path | str | None = None) -> Path:
    """env_path that must exist (exit 1 with the known names otherwise)."""
    path = env_path(name_or_path, directory)
    if not path.is_file():
        where = path.parent
        known = sorted(p.stem for p in where.glob("*.yaml")) if where.is_dir() else []
        hint = (
            f"known in {where}: {', '.join(known)}"
            if known
            else ("create one with `ssmd env create NAME`, or pass --dir / SSMD_ENV_DIR")
        )
        raise CliError(f"no environment definition at {path}", INVALID, hint)
    return path


def print_errors(errors: list[SpecError]) -> None:
    """One `file:line:col: path: message (hint)` line each, on stderr (like a compiler)."""
    for e in errors:
        typer.echo(str(e), err=True)


def refuse(exc: InvalidSpec | EditError, path: Path) -> NoReturn:
    """Report a refused edit; the file was not written."""
    if isinstance(exc, InvalidSpec):
        print_errors(exc.errors)
        raise CliError(
            f"refused: the result would be invalid ({len(exc.errors)} error(s)); "
            f"{path} is unchanged",
            INVALID,
        )
    raise CliError(f"{exc}; {path} is unchanged", INVALID, exc.hint)


def template_text(template: str) -> str:
    return (resources.files("ssmd.spec") / "templates" / f"{template}.yaml").read_text("utf-8")


def render_template(template: str, name: str) -> str:
    """The template with metadata.name (and deploy.namespace, if any) set for NAME."""
    text = template_text(template)
    tree, errors = parse(text, f"<template {template}>")
    if errors:  # pragma: no cover - templates are tested valid
        raise InvalidSpec(errors)
    tree["metadata"]["name"] = name
    if isinstance(tree.get("deploy"), dict) and "namespace" in tree["deploy"]:
        tree["deploy"]["namespace"] = f"ssmd-{name}"
    return dump(tree, text)


@app.command()
def create(
    name: str = typer.Argument(..., help="Environment name, e.g. staging (lowercase, '-')."),
    from_template: str = typer.Option(
        "minimal", "--from-template", "-t", help="minimal | dev | prod"
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    directory: Path = DirOpt,
) -> None:
    """Write DIR/NAME.yaml from a template, already valid."""
    if from_template not in TEMPLATES:
        raise CliError(
            f"unknown template {from_template!r}", USAGE, f"choose one of: {', '.join(TEMPLATES)}"
        )
    path = env_path(name, directory)
    if path.exists() and not force:
        raise CliError(f"{path} already exists", INVALID, "pass --force to overwrite it")
    text = render_template(from_template, path.stem if path.suffix else name)
    errors = spec.validate_text(text, str(path))
    if errors:
        print_errors(errors)
        raise CliError(f"cannot create {path}: the name or template is invalid", INVALID)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    typer.echo(f"created {path} from the {from_template} template")


@app.command()
def validate(
    paths: list[str] = typer.Argument(..., help="Environment names or .yaml paths."),
    as_json: bool = JsonOpt,
    directory: Path = DirOpt,
) -> None:
    """Check definitions; print every error as file:line:col: path: message (hint).

    Exit status 1 if any file has an error.
    """
    results = []
    for name in paths:
        path = env_path(name, directory)
        errors = spec.validate_file(path)
        results.append({"file": str(path), "ok": not errors, "errors": errors})
    ok = all(r["ok"] for r in results)
    if as_json:
        print_json({"ok": ok, "files": results})
    else:
        for r in results:
            if r["ok"]:
                typer.echo(f"ok {r['file']}")
            else:
                print_errors(r["errors"])
                typer.echo(f"invalid {r['file']}: {len(r['errors'])} error(s)")
    if not ok:
        raise typer.Exit(INVALID)


def load_env(name: str, directory: Path | None) -> spec.Environment:
    """The definition NAME, valid; otherwise its errors on stderr and exit 1."""
    path = existing(name, directory)
    try:
        return spec.load(path)
    except InvalidSpec as exc:
        print_errors(exc.errors)
        raise CliError(f"{path} is invalid; fix it first", INVALID) from None


def edited(path: Path, what: str, change: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """Run one comment-preserving edit of `path`; a refused edit leaves the file untouched."""
    try:
        change(path, *args, **kwargs)
    except (InvalidSpec, EditError) as exc:
        refuse(exc, path)
    typer.echo(f"{what} in {path}")


@app.command()
def diff(
    a: str = typer.Argument(..., help="From: environment name or path."),
    b: str = typer.Argument(..., help="To: environment name or path."),
    as_json: bool = JsonOpt,
    directory: Path = DirOpt,
) -> None:
    """Structural differences from A to B, by path (+ added, - removed, ~ changed)."""
    changes = spec.diff(load_env(a, directory), load_env(b, directory))
    if as_json:
        print_json(changes)
        return
    if not changes:
        typer.echo("no differences")
    for change in changes:
        typer.echo(str(change))


@app.command(name="promote")
def promote_cmd(
    source: str = typer.Argument(..., help="Environment to promote from (e.g. staging)."),
    to: str = typer.Option(..., "--to", help="Environment to promote into (e.g. prod)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write nothing."),
    as_json: bool = JsonOpt,
    directory: Path = DirOpt,
) -> None:
    """Copy SOURCE's feeds, streams, transforms, calendars, schedules and quality into --to.

    The target keeps its own metadata, storage, deploy, integrations, clients and
    streams.replicas. Refused (target untouched) if the result would be invalid.
    """
    src, dst = existing(source, directory), existing(to, directory)
    before = load_env(to, directory)
    load_env(source, directory)
    if dry_run:
        from ssmd.spec.edit import edit_text, promote_tree

        src_tree, _ = parse(src.read_text("utf-8"), str(src))
        try:
            _, after = edit_text(
                dst.read_text("utf-8"), str(dst), lambda t: promote_tree(src_tree, t)
            )
        except (InvalidSpec, EditError) as exc:
            refuse(exc, dst)
    else:
        try:
            after = promote(src, dst)
        except (InvalidSpec, EditError) as exc:
            refuse(exc, dst)
    changes = spec.diff(before, after)
    if as_json:
        print_json({"target": str(dst), "written": not dry_run, "changes": changes})
        return
    for change in changes:
        typer.echo(str(change))
    verb = "would change" if dry_run else "promoted into"
    typer.echo(f"{src} {verb} {dst}: {len(changes)} change(s)")


@app.command()
def schema() -> None:
    """Print the JSON Schema of environment files (for editor completion and checks).

    e.g. `ssmd env schema > environment.schema.json`, then in the YAML:
    `# yaml-language-server: $schema=environment.schema.json`
    """
    print_json(spec.json_schema())
