"""Secret references: the definition names where a secret lives, never the secret itself.

Forms: `env:NAME` (environment variable), `file:/abs/path` (mounted file),
`k8s:secret/key` (Kubernetes Secret and key). The runtime resolves them; validation only
checks the form, so nothing secret is ever stored in Git, Postgres or NATS.
"""

from __future__ import annotations

import re

SCHEMES = ("env", "file", "k8s")
FORMS = "env:NAME, file:/abs/path or k8s:secret/key"
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_K8S = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/[-._a-zA-Z0-9]{1,253}$")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def check_ref(value: str) -> tuple[str, str] | None:
    """None if `value` is a well-formed reference, else (message, hint)."""
    match = _SCHEME.match(value)
    if not match or match.group(1) in ("http", "https", "s3") or value.startswith("-"):
        return (
            "inline secrets are not allowed; write a reference to where the secret lives",
            f"e.g. env:MY_SECRET, then export MY_SECRET=…; forms: {FORMS}",
        )
    scheme, rest = match.group(1), value[match.end() :]
    if scheme == "env":
        if not _ENV.match(rest):
            return (
                f"malformed secret reference {value!r}: {rest!r} is not a variable name",
                "env:NAME takes letters, digits and '_', not starting with a digit",
            )
    elif scheme == "file":
        if not rest.startswith("/") or rest.endswith("/") or "/../" in rest + "/":
            return (
                f"malformed secret reference {value!r}: the path must be absolute",
                "write file:/absolute/path/to/secret",
            )
    elif scheme == "k8s":
        if not _K8S.match(rest):
            return (
                f"malformed secret reference {value!r}: expected k8s:secret-name/key",
                "a Kubernetes Secret name (lowercase, digits, '-', '.') then '/' and the key",
            )
    else:
        return (f"unknown secret reference scheme {scheme!r}", f"use {FORMS}")
    return None
