"""Text -> typed definition + every error, positioned. The functions other packages call.

`check_text` never raises; `loads`/`load` raise `InvalidSpec` with all errors. Cross-field
rules run even when some fields have type errors (those fall back to defaults), but a rule
error that lies on or under a path that already had a type error is dropped: it would only
repeat the first complaint.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any

import msgspec

from ssmd.spec import rules
from ssmd.spec.errors import InvalidSpec, Issue, Path, SpecError, render_path
from ssmd.spec.model import Environment
from ssmd.spec.structure import build
from ssmd.spec.yamlsrc import Positions, parse


def place(issues: list[Issue], file: str, positions: Positions | None) -> list[SpecError]:
    """Issues -> SpecErrors with file positions (0:0 when there is no source)."""
    out = []
    for issue in issues:
        line, col = positions.at(issue.path, key=issue.key) if positions else (0, 0)
        out.append(
            SpecError(
                file=file,
                line=line,
                col=col,
                path=render_path(issue.path),
                message=issue.message,
                hint=issue.hint,
            )
        )
    return out


def _related(path: Path, bad: set[Path]) -> bool:
    return any(path[: len(b)] == b or b[: len(path)] == path for b in bad if b)


def check_tree(tree: Any, file: str) -> tuple[Environment | None, list[SpecError]]:
    """Typed value and every error for an already-parsed tree."""
    positions = Positions(tree)
    if tree is None:
        return None, [
            SpecError(
                file=file,
                line=1,
                col=1,
                path="<root>",
                message="the document is empty",
                hint="start from `ssmd env create NAME`",
            )
        ]
    env, issues, bad = build(tree, Environment)
    if env is not None:
        issues += [i for i in rules.check(env) if not _related(i.path, bad) and i.ref not in bad]
    return env, sorted(place(issues, file, positions), key=lambda e: (e.line, e.col, e.path))


def check_text(text: str, file: str = "<string>") -> tuple[Environment | None, list[SpecError]]:
    """(definition or None, errors); the definition is usable only when errors is empty."""
    tree, errors = parse(text, file)
    if errors:
        return None, errors
    return check_tree(tree, file)


def validate_text(text: str, file: str = "<string>") -> list[SpecError]:
    return check_text(text, file)[1]


def validate_file(path: str | FsPath) -> list[SpecError]:
    """Every error in one file; an unreadable file is one error, not an exception."""
    p = FsPath(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return [
            SpecError(file=str(p), line=0, col=0, path="<file>", message=f"cannot read: {reason}")
        ]
    return validate_text(text, str(p))


def loads(text: str, file: str = "<string>") -> Environment:
    env, errors = check_text(text, file)
    if errors or env is None:
        raise InvalidSpec(errors)
    return env


def load(path: str | FsPath) -> Environment:
    """The validated definition in `path`; raises InvalidSpec listing every error."""
    p = FsPath(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise InvalidSpec(validate_file(p)) from None
    return loads(text, str(p))


def validate(env: Environment, file: str = "<spec>") -> list[SpecError]:
    """Cross-field rules on an in-memory definition (e.g. decoded from stored JSON).

    Types were checked when it was built; positions are 0:0 (there is no YAML).
    """
    return place(rules.check(env), file, None)


def from_json(data: bytes | str) -> Environment:
    """Decode canonical JSON (as stored per version) and re-validate it."""
    try:
        env = msgspec.json.decode(data, type=Environment)
    except msgspec.ValidationError as exc:
        raise InvalidSpec(
            [SpecError(file="<json>", line=0, col=0, path="<root>", message=str(exc))]
        ) from None
    errors = validate(env, "<json>")
    if errors:
        raise InvalidSpec(errors)
    return env
