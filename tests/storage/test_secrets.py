"""Secret references resolved at the runtime edge: values found, errors that say which
reference, which field and how to fix it — never the secret itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssmd.storage.secrets import SecretError, resolve_secret

FIELD = "storage.object_store.credentials.secret_access_key"


def test_env_and_file_values(tmp_path: Path) -> None:
    assert resolve_secret("env:S3_KEY", environ={"S3_KEY": "abc"}) == "abc"
    path = tmp_path / "secret"
    path.write_text("s3cr3t\n")  # the newline editors add is not part of the secret
    assert resolve_secret(f"file:{path}", environ={}) == "s3cr3t"


def test_k8s_reads_the_mounted_secret_inside_a_cluster(tmp_path: Path) -> None:
    (tmp_path / "ssmd-s3").mkdir()
    (tmp_path / "ssmd-s3" / "secret-key").write_text("from-k8s")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "SSMD_K8S_SECRETS_DIR": str(tmp_path)}
    assert resolve_secret("k8s:ssmd-s3/secret-key", environ=env) == "from-k8s"


@pytest.mark.parametrize(
    ("ref", "environ", "message", "hint"),
    [
        (
            "env:MISSING",
            {},
            f"secret reference env:MISSING ({FIELD}): environment variable MISSING is not set",
            "export MISSING=… in the environment of this process",
        ),
        (
            "env:EMPTY",
            {"EMPTY": ""},
            f"secret reference env:EMPTY ({FIELD}): EMPTY is set but empty",
            "",
        ),
        (
            "file:/nonexistent/dir/key",
            {},
            f"secret reference file:/nonexistent/dir/key ({FIELD}): /nonexistent/dir/key "
            "does not exist",
            "create /nonexistent/dir/key (mode 0600) holding the secret",
        ),
        (
            "k8s:ssmd-s3/secret-key",
            {},
            f"secret reference k8s:ssmd-s3/secret-key ({FIELD}): k8s: references resolve only "
            "inside Kubernetes",
            "outside a cluster use env:NAME or file:/path for this secret",
        ),
        (
            "k8s:ssmd-s3/secret-key",
            {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "SSMD_K8S_SECRETS_DIR": "/nonexistent"},
            f"secret reference k8s:ssmd-s3/secret-key ({FIELD}): /nonexistent/ssmd-s3/secret-key "
            "does not exist",
            "mount Secret 'ssmd-s3' at /nonexistent/ssmd-s3 in this pod (volume of type secret)",
        ),
        (
            "hunter2",
            {},
            "inline secrets are not allowed; write a reference to where the secret lives "
            f"({FIELD})",
            "e.g. env:MY_SECRET, then export MY_SECRET=…; forms: env:NAME, file:/abs/path or "
            "k8s:secret/key",
        ),
        (
            "env:1BAD",
            {},
            f"malformed secret reference 'env:1BAD': '1BAD' is not a variable name ({FIELD})",
            "env:NAME takes letters, digits and '_', not starting with a digit",
        ),
        (
            "vault:x",
            {},
            f"unknown secret reference scheme 'vault' ({FIELD})",
            "use env:NAME, file:/abs/path or k8s:secret/key",
        ),
    ],
)
def test_errors_are_clear(ref: str, environ: dict, message: str, hint: str) -> None:
    with pytest.raises(SecretError) as err:
        resolve_secret(ref, field=FIELD, environ=environ)
    assert (str(err.value), err.value.hint) == (message, hint)


def test_empty_and_directory_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SecretError, match=f"{empty} is empty"):
        resolve_secret(f"file:{empty}", environ={})
    with pytest.raises(SecretError, match=f"{tmp_path} is a directory"):
        resolve_secret(f"file:{tmp_path}", environ={})
