"""YAML text -> round-trip tree with positions; syntax errors become positioned errors.

ruamel.yaml's round-trip loader keeps every node's line/column (and the comments edits
must preserve). Positions are 1-based here, as editors and compilers print them.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedBase, CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ssmd.spec.errors import Path, SpecError


def new_yaml() -> YAML:
    """A round-trip loader/dumper: duplicate keys are errors, long lines are not wrapped."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = False
    yaml.width = 4096
    return yaml


def parse(text: str, file: str) -> tuple[Any, list[SpecError]]:
    """Parse one YAML document; never raises. Returns (tree, errors)."""
    try:
        tree = new_yaml().load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark and "<stream end>" in (exc.problem or ""):
            mark = exc.context_mark  # where the unclosed thing began, not past the end
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(filter(None, [exc.problem, f"({exc.context})" if exc.context else ""]))
        if exc.problem and "duplicate key" in exc.problem:
            message = exc.problem.split(" with value")[0]
            hint = "each key may appear once in a mapping"
        else:
            hint = "invalid YAML syntax"
        return None, [
            SpecError(file=file, line=line, col=col, path="<yaml>", message=message, hint=hint)
        ]
    except (YAMLError, RecursionError, ValueError, TypeError, AttributeError, KeyError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, [
            SpecError(file=file, line=1, col=1, path="<yaml>", message=message, hint="invalid YAML")
        ]
    return tree, []


class Positions:
    """Line/column of any path in a parsed tree; unknown paths fall back to their parent."""

    def __init__(self, tree: Any) -> None:
        self.tree = tree

    def at(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Where the value at `path` starts; with key=True, where its key is written.

        Containers are placed at their key (the line a reader looks for); scalars at the
        value. A path that does not exist resolves to its deepest existing ancestor.
        """
        node: Any = self.tree
        pos = (1, 1)
        if isinstance(node, CommentedBase) and node.lc.line is not None:
            pos = (node.lc.line + 1, (node.lc.col or 0) + 1)
        for i, elem in enumerate(path):
            last = i == len(path) - 1
            try:
                if isinstance(node, CommentedMap) and elem in node:
                    child = node[elem]
                    use_key = (key and last) or isinstance(child, CommentedMap | CommentedSeq)
                    where = node.lc.key(elem) if use_key else node.lc.value(elem)
                elif isinstance(node, CommentedSeq) and isinstance(elem, int) and elem < len(node):
                    child = node[elem]
                    where = node.lc.item(elem)
                else:
                    break
            except (KeyError, IndexError, TypeError, AttributeError):
                break
            if where is not None and where[0] is not None:
                pos = (where[0] + 1, (where[1] or 0) + 1)
            node = child
        return pos
