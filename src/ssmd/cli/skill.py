"""`ssmd skill new|list|validate`: Agent Skills under skills/ (docs/agents.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from ssmd.cli.output import INVALID, CliError

app = typer.Typer(help="Agent Skills (skills/<name>/SKILL.md): scaffold, list, validate.",
                  no_args_is_help=True)  # fmt: skip
RootOpt = typer.Option(Path("skills"), "--root", help="The skills directory.")
JsonOpt = typer.Option(False, "--json", help="Machine-readable output.")


def _commands() -> set[str]:
    from ssmd.agents.skills import command_paths
    from ssmd.cli.main import app as main_app

    return command_paths(typer.main.get_command(main_app))


@app.command("new")
def new(
    name: str = typer.Argument(..., help="Skill name: lowercase, hyphens (e.g. explore-data)."),
    description: str = typer.Option(
        "TODO: what this skill does and when to use it.", "--description", "-d"
    ),
    root: Path = RootOpt,
) -> None:
    """Scaffold skills/NAME/SKILL.md with front matter and an outline."""
    from ssmd.agents.skills import scaffold

    try:
        path = scaffold(root, name, description)
    except (ValueError, FileExistsError) as exc:
        raise CliError(str(exc), INVALID) from None
    typer.echo(str(path))


@app.command("list")
def list_(root: Path = RootOpt, json: bool = JsonOpt) -> None:
    """Skills with their descriptions."""
    import msgspec

    from ssmd.agents.skills import load, skill_dirs

    found = [s for s in (load(d) for d in skill_dirs(root)) if s is not None]
    if json:
        typer.echo(msgspec.json.encode(found).decode())
        return
    for s in found:
        typer.echo(f"{s.name:20} {s.description}")


@app.command("validate")
def validate(root: Path = RootOpt, json: bool = JsonOpt) -> None:
    """Check every skill: front matter, name = directory, description length, and that
    referenced MCP tools and ssmd commands exist. Exit 1 on any problem."""
    import msgspec

    from ssmd.agents.mcp import TOOLS
    from ssmd.agents.skills import skill_dirs
    from ssmd.agents.skills import validate as run

    problems = run(root, TOOLS, _commands())
    if json:
        doc = {"skills": len(skill_dirs(root)), "ok": not problems, "problems": problems}
        typer.echo(msgspec.json.encode(doc).decode())
    else:
        for p in problems:
            typer.echo(f"{p.skill}: {p.message}")
        if not problems:
            typer.echo(f"{len(skill_dirs(root))} skills OK")
    if problems:
        raise typer.Exit(INVALID)
