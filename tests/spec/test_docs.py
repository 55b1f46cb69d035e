"""docs/environment.md documents every key, and its example is valid."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec.inspect as mi

from ssmd import spec
from ssmd.spec import model

DOC = (Path(__file__).resolve().parents[2] / "docs" / "environment.md").read_text()


def _structs() -> list[type]:
    return [
        v
        for v in vars(model).values()
        if isinstance(v, type) and issubclass(v, model.Spec) and v is not model.Spec
    ]


def test_every_field_documented() -> None:
    missing = []
    for cls in _structs():
        section = DOC.split(f"({cls.__name__})\n", 1)
        if len(section) != 2:
            missing.append(cls.__name__)
            continue
        table = section[1].split("\n###", 1)[0]
        for f in mi.type_info(cls).fields:
            if f"| `{f.encode_name}` |" not in table:
                missing.append(f"{cls.__name__}.{f.encode_name}")
    assert missing == []


def test_doc_example_is_valid() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
    assert len(blocks) == 1
    env = spec.loads(blocks[0], "docs/environment.md")
    assert env.streams.max_bytes == 50 * 2**30
    assert env.storage.retention.raw == 0
