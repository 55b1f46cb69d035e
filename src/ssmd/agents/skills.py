"""Agent Skills (`skills/<name>/SKILL.md`): scaffold, list and validate.

A skill is YAML front matter (`name`, `description`) and Markdown instructions. Why
validate: a skill that names a tool or a command that does not exist fails silently in
an agent's hands, so `ssmd skill validate` checks references against the real MCP tool
list and the real `ssmd` command tree. Conventions checked:

- MCP tools are written as calls in backticks: `get_trades(feed, symbol, …)`;
- CLI commands are written in backticks or code blocks starting with `ssmd `.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import msgspec
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_NAME = 64
MIN_DESCRIPTION, MAX_DESCRIPTION = 20, 1024
TOOL_CALL = re.compile(r"`([a-z][a-z0-9_]*)\(")
CLI_USE = re.compile(r"(?:^|`|\$ )ssmd((?: +[a-z][a-z0-9-]*)+)", re.MULTILINE)

TEMPLATE = """\
---
name: {name}
description: {description}
---

# {title}

Use the ssmd MCP tools (see docs/agents.md); start with `list_feeds()`.

1. …
"""


class Skill(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    description: str
    path: str


class Problem(msgspec.Struct, kw_only=True, frozen=True):
    skill: str
    message: str


def split(text: str) -> tuple[dict[str, object] | None, str, str]:
    """(front matter, body, error): the YAML between the leading `---` lines."""
    if not text.startswith("---\n"):
        return None, text, "no front matter: the file must start with a '---' line"
    end = text.find("\n---", 4)
    if end < 0:
        return None, text, "front matter is not closed by a '---' line"
    try:
        data = YAML(typ="safe").load(text[4:end])
    except YAMLError as exc:
        return None, text, f"front matter is not valid YAML: {str(exc).splitlines()[0]}"
    if not isinstance(data, dict):
        return None, text, "front matter must be a mapping with name and description"
    return data, text[end + 4 :], ""


def skill_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def load(directory: Path) -> Skill | None:
    path = directory / "SKILL.md"
    if not path.is_file():
        return None
    meta, _, _ = split(path.read_text())
    meta = meta or {}
    return Skill(name=str(meta.get("name", "")), description=str(meta.get("description", "")),
                 path=str(path))  # fmt: skip


def check(directory: Path, tools: Iterable[str], commands: set[str]) -> list[str]:
    """Problems with one skill directory (empty when valid)."""
    path = directory / "SKILL.md"
    if not path.is_file():
        return ["no SKILL.md"]
    meta, body, error = split(path.read_text())
    if meta is None:
        return [error]
    out: list[str] = []
    name, desc = meta.get("name"), meta.get("description")
    if not isinstance(name, str) or not name:
        out.append("front matter: name is missing")
    elif not NAME.match(name) or len(name) > MAX_NAME:
        out.append(f"name {name!r}: lowercase letters, digits and single hyphens, "
                   f"at most {MAX_NAME} characters")  # fmt: skip
    elif name != directory.name:
        out.append(f"name {name!r} does not match the directory {directory.name!r}")
    if not isinstance(desc, str) or not desc.strip():
        out.append("front matter: description is missing")
    elif not MIN_DESCRIPTION <= len(desc) <= MAX_DESCRIPTION:
        out.append(f"description is {len(desc)} characters; it must be "
                   f"{MIN_DESCRIPTION}..{MAX_DESCRIPTION}")  # fmt: skip
    known = set(tools)
    for tool in sorted(set(TOOL_CALL.findall(body)) - known):
        out.append(f"unknown MCP tool {tool!r} (tools: {', '.join(sorted(known))})")
    for match in CLI_USE.finditer(body):
        words = match.group(1).split()
        if not _known(words, commands):
            out.append(f"unknown command 'ssmd {' '.join(words)}' (see ssmd --help)")
    return out


def _known(words: list[str], commands: set[str]) -> bool:
    """The words name a command: walk the tree; a group must be followed by a subcommand
    (or nothing), a leaf by anything (its arguments)."""
    path = ""
    for i, word in enumerate(words):
        nxt = f"{path} {word}".strip()
        if nxt in commands:
            path = nxt
            continue
        is_group = any(c.startswith(path + " ") for c in commands)
        return bool(path) and not is_group and i > 0
    return bool(path)


def validate(root: Path, tools: Iterable[str], commands: set[str]) -> list[Problem]:
    tools = list(tools)
    return [Problem(skill=d.name, message=m)
            for d in skill_dirs(root) for m in check(d, tools, commands)]  # fmt: skip


def scaffold(root: Path, name: str, description: str) -> Path:
    """skills/NAME/SKILL.md from the template; FileExistsError if the skill exists."""
    if not NAME.match(name) or len(name) > MAX_NAME:
        raise ValueError(f"skill name {name!r}: lowercase letters, digits, single hyphens")
    path = root / name / "SKILL.md"
    if path.exists():
        raise FileExistsError(f"{path} exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    title = name.replace("-", " ").capitalize()
    path.write_text(TEMPLATE.format(name=name, description=description, title=title))
    return path


def command_paths(group: object, prefix: str = "") -> set[str]:
    """Every command path of a click group ('env', 'env plan', …), leaves and groups."""
    out: set[str] = set()
    for name, cmd in getattr(group, "commands", {}).items():
        path = f"{prefix} {name}".strip()
        out.add(path)
        out |= command_paths(cmd, path)
    return out
