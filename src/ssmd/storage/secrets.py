"""Resolving secret references at the runtime edge (`env:NAME`, `file:/path`, `k8s:s/key`).

`ssmd.spec.secrets` only checks the form (validation is pure); this module reads the
value, at the moment a component needs it, and never puts the value in an error message.

`k8s:secret/key` resolves to a mounted file: the deployment mounts each referenced
Secret at `{SSMD_K8S_SECRETS_DIR or /var/run/secrets/ssmd}/{secret}/{key}` (the usual
Kubernetes way; no API access, no RBAC). Outside a cluster such a reference is an error
that says to use `env:` or `file:` locally.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ssmd.spec.secrets import check_ref

K8S_SECRETS_DIR = "/var/run/secrets/ssmd"
"""Where a pod mounts the Secrets its definition references (override: SSMD_K8S_SECRETS_DIR)."""

__all__ = ["K8S_SECRETS_DIR", "SecretError", "resolve_secret"]


class SecretError(ValueError):
    """A reference that cannot be resolved; the message names the reference and where it
    came from (never the value), the hint says how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def resolve_secret(ref: str, *, field: str = "", environ: Mapping[str, str] | None = None) -> str:
    """The secret `ref` points at. `field` (e.g. `storage.object_store.credentials.
    access_key_id`) is named in errors so the operator knows which line to fix."""
    env = os.environ if environ is None else environ
    where = f" ({field})" if field else ""
    bad = check_ref(ref)
    if bad is not None:
        raise SecretError(f"{bad[0]}{where}", bad[1])
    scheme, rest = ref.split(":", 1)
    if scheme == "env":
        value = env.get(rest)
        if value is None:
            raise SecretError(
                f"secret reference {ref}{where}: environment variable {rest} is not set",
                f"export {rest}=… in the environment of this process",
            )
        if not value:
            raise SecretError(f"secret reference {ref}{where}: {rest} is set but empty")
        return value
    if scheme == "file":
        return _read(Path(rest), ref, where, f"create {rest} (mode 0600) holding the secret")
    in_cluster = bool(env.get("KUBERNETES_SERVICE_HOST"))
    if not in_cluster:
        raise SecretError(
            f"secret reference {ref}{where}: k8s: references resolve only inside Kubernetes",
            "outside a cluster use env:NAME or file:/path for this secret",
        )
    name, key = rest.split("/", 1)
    base = Path(env.get("SSMD_K8S_SECRETS_DIR") or K8S_SECRETS_DIR)
    return _read(
        base / name / key,
        ref,
        where,
        f"mount Secret {name!r} at {base / name} in this pod (volume of type secret)",
    )


def _read(path: Path, ref: str, where: str, hint: str) -> str:
    try:
        value = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretError(f"secret reference {ref}{where}: {path} does not exist", hint) from None
    except IsADirectoryError:
        raise SecretError(f"secret reference {ref}{where}: {path} is a directory") from None
    except PermissionError:
        raise SecretError(
            f"secret reference {ref}{where}: {path} is not readable by this process",
            "fix the file's owner or mode",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"secret reference {ref}{where}: cannot read {path}: {exc}") from None
    value = value.rstrip("\r\n")  # editors and `echo` add one; a secret never ends with it
    if not value:
        raise SecretError(f"secret reference {ref}{where}: {path} is empty")
    return value
