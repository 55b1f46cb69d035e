"""The environment definition: typed model, positioned YAML loading, validation, diff, schema.

Everything ssmd does derives from one definition (DESIGN §1, §4). Typical use:

    env = load("environments/dev.yaml")          # raises InvalidSpec with every error
    env, errors = check_text(text, "dev.yaml")   # never raises
    canonical_json(env), spec_sha256(env)        # what a stored version is named by
"""

from ssmd.spec.canonical import Change, canonical_json, diff, spec_sha256, to_document
from ssmd.spec.errors import InvalidSpec, SpecError
from ssmd.spec.load import (
    check_text,
    from_json,
    load,
    loads,
    validate,
    validate_file,
    validate_text,
)
from ssmd.spec.model import Environment
from ssmd.spec.schema import json_schema

__all__ = [
    "Change",
    "Environment",
    "InvalidSpec",
    "SpecError",
    "canonical_json",
    "check_text",
    "diff",
    "from_json",
    "json_schema",
    "load",
    "loads",
    "spec_sha256",
    "to_document",
    "validate",
    "validate_file",
    "validate_text",
]
