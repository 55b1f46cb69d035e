"""`ssmd skill validate` catches each mistake class; the shipped skills are valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from ssmd.agents.mcp import TOOLS
from ssmd.agents.skills import check, command_paths, scaffold, validate
from ssmd.cli.main import app

REPO = Path(__file__).resolve().parents[2]
COMMANDS = command_paths(typer.main.get_command(app))
GOOD = "---\nname: demo\ndescription: Demonstrates a skill that is valid in every way.\n---\n"


def problems(tmp: Path, text: str, name: str = "demo") -> list[str]:
    (tmp / name).mkdir(exist_ok=True)
    (tmp / name / "SKILL.md").write_text(text)
    return check(tmp / name, TOOLS, COMMANDS)


def test_shipped_skills_are_valid() -> None:
    assert validate(REPO / "skills", TOOLS, COMMANDS) == []
    assert {"env plan", "env apply", "feed add-instrument", "mcp"} <= COMMANDS


def test_good_skill(tmp_path: Path) -> None:
    body = "Call `get_trades(feed, symbol)` then run `ssmd env plan dev`.\n"
    assert problems(tmp_path, GOOD + body) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# no front matter\n", "no front matter"),
        ("---\nname: demo\n", "not closed"),
        ("---\nname: [demo\n---\n", "not valid YAML"),
        ("---\n- a list\n---\n", "must be a mapping"),
        ("---\ndescription: A description long enough to pass.\n---\n", "name is missing"),
        ("---\nname: Demo_X\ndescription: A description long enough to pass.\n---\n",
         "lowercase"),
        ("---\nname: other\ndescription: A description long enough to pass.\n---\n",
         "does not match the directory"),
        ("---\nname: demo\n---\n", "description is missing"),
        ("---\nname: demo\ndescription: short\n---\n", "description is 5 characters"),
        (GOOD + "Use `get_trade(feed)`.\n", "unknown MCP tool 'get_trade'"),
        (GOOD + "Run `ssmd env deploy dev`.\n", "unknown command 'ssmd env deploy dev'"),
        (GOOD + "```\n$ ssmd frobnicate\n```\n", "unknown command 'ssmd frobnicate'"),
    ],
)  # fmt: skip
def test_each_mistake_is_caught(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(expected in p for p in found), found


def test_missing_file_and_scaffold(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert check(tmp_path / "empty", TOOLS, COMMANDS) == ["no SKILL.md"]
    path = scaffold(tmp_path, "new-one", "Scaffolded skill with a long enough description.")
    assert check(path.parent, TOOLS, COMMANDS) == []
    with pytest.raises(FileExistsError):
        scaffold(tmp_path, "new-one", "x")
    with pytest.raises(ValueError):
        scaffold(tmp_path, "Bad_Name", "x")
