"""JSON Schema of the definition, for editors (yaml-language-server, VS Code, JetBrains).

msgspec derives it from the model; durations and sizes are then widened to what YAML
authors write ("7d", "10GiB"), since the model's ints are the parsed form.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ssmd.spec import units
from ssmd.spec.model import Environment

SCHEMA_ID = "https://ssmd.dev/schemas/environment-v1.json"


def _fix(node: Any) -> Any:
    if isinstance(node, list):
        return [_fix(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _fix(v) for k, v in node.items()}
    unit = node.pop("x-unit", None)
    forever = node.pop("x-forever", False)
    if unit is None:
        return node
    pattern = units.DURATION_PATTERN if unit == "duration" else units.SIZE_PATTERN
    if unit == "duration" and not forever:
        pattern = pattern.replace("0|forever|", "0|")
    out: dict[str, Any] = {"description": node.get("description", "")}
    fmt = units.format_duration if unit == "duration" else units.format_size
    if "default" in node:
        out["default"] = (
            fmt(node["default"])
            if unit == "size" or node["default"]
            else ("forever" if forever else "0s")
        )
    out["anyOf"] = [
        {"type": "string", "pattern": pattern},
        {"type": "integer", "minimum": 0} if unit == "size" else {"const": 0},
    ]
    return out


def json_schema() -> dict[str, Any]:
    """The draft 2020-12 schema of `environments/*.yaml`."""
    schema = _fix(msgspec.json.schema(Environment))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "ssmd environment definition",
        **schema,
    }
