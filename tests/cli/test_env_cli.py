"""`ssmd env`: create, validate, diff, promote, schema — outputs and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssmd.cli.env import env_path
from ssmd.cli.main import app
from ssmd.cli.output import CliError

REPO = Path(__file__).resolve().parents[2]
INVALID = REPO / "tests" / "data" / "invalid"


def ssmd(*args: str) -> tuple[int, str, str]:
    """Run a command as `ssmd` would: CliError -> its exit code and message."""
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, CliError):
        exc = result.exception
        return exc.code, result.stdout, f"{result.stderr}{exc}\nhint: {exc.hint}"
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def envs(tmp_path: Path) -> Path:
    for name in ("dev", "prod"):
        shutil.copy(REPO / "environments" / f"{name}.yaml", tmp_path / f"{name}.yaml")
    return tmp_path


def test_env_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SSMD_ENV_DIR", raising=False)
    assert env_path("dev") == Path("environments/dev.yaml")
    assert env_path("dev", tmp_path) == tmp_path / "dev.yaml"
    assert env_path("x/dev.yaml") == Path("x/dev.yaml")
    assert env_path("other.yml") == Path("other.yml")
    monkeypatch.setenv("SSMD_ENV_DIR", str(tmp_path))
    assert env_path("prod") == tmp_path / "prod.yaml"


def test_validate_ok(envs: Path) -> None:
    code, out, _ = ssmd("env", "validate", "dev", "prod", "--dir", str(envs))
    assert code == 0
    assert out.splitlines() == [f"ok {envs / 'dev.yaml'}", f"ok {envs / 'prod.yaml'}"]


def test_validate_errors_exit_1(envs: Path) -> None:
    bad = str(INVALID / "unknown_key.yaml")
    code, out, err = ssmd("env", "validate", "dev", bad, "--dir", str(envs))
    assert code == 1
    assert err.splitlines() == [
        f"{bad}:9:5: feeds.sim.shard: unknown key 'shard' (did you mean 'shards'?)",
        f"{bad}:10:1: stream: unknown key 'stream' (did you mean 'streams'?)",
    ]
    assert out.splitlines()[-1] == f"invalid {bad}: 2 error(s)"


def test_validate_json(envs: Path) -> None:
    bad = str(INVALID / "replicas_7.yaml")
    code, out, _ = ssmd("env", "validate", bad, "dev", "--json", "--dir", str(envs))
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False
    assert [f["ok"] for f in doc["files"]] == [False, True]
    assert doc["files"][0]["errors"] == [
        {
            "file": bad,
            "line": 6,
            "col": 13,
            "path": "streams.replicas",
            "message": "7 is greater than the maximum 5",
            "hint": "JetStream supports 1 to 5 replicas",
        }
    ]


def test_validate_missing_file(tmp_path: Path) -> None:
    code, out, _ = ssmd("env", "validate", "ghost", "--dir", str(tmp_path), "--json")
    assert code == 1
    (f,) = json.loads(out)["files"]
    assert f["errors"][0]["message"] == "cannot read: No such file or directory"


@pytest.mark.parametrize("template", ["minimal", "dev", "prod"])
def test_create_from_template(tmp_path: Path, template: str) -> None:
    code, out, _ = ssmd("env", "create", "staging", "-t", template, "--dir", str(tmp_path))
    assert code == 0, out
    path = tmp_path / "staging.yaml"
    assert out.strip() == f"created {path} from the {template} template"
    from ssmd import spec

    env = spec.load(path)
    assert env.metadata.name == "staging"
    if template == "prod":
        assert env.deploy.namespace == "ssmd-staging"
    code, _, err = ssmd("env", "create", "staging", "--dir", str(tmp_path))
    assert code == 1 and "already exists" in err


def test_create_bad_inputs(tmp_path: Path) -> None:
    code, _, err = ssmd("env", "create", "x", "-t", "huge", "--dir", str(tmp_path))
    assert code == 2 and "unknown template 'huge'" in err
    code, _, err = ssmd("env", "create", "Bad_Name", "--dir", str(tmp_path))
    assert code == 1
    assert "metadata.name: 'Bad_Name' is not a valid value" in err
    assert list(tmp_path.iterdir()) == []


def test_diff(envs: Path) -> None:
    staging = envs / "staging.yaml"
    staging.write_text((envs / "prod.yaml").read_text().replace("replicas: 3", "replicas: 1"))
    code, out, _ = ssmd("env", "diff", "prod", "staging", "--dir", str(envs))
    assert code == 0
    assert out.splitlines() == ["~ streams.replicas: 3 -> 1"]
    code, out, _ = ssmd("env", "diff", "prod", "staging", "--json", "--dir", str(envs))
    assert json.loads(out) == [{"op": "changed", "path": "streams.replicas", "old": 3, "new": 1}]
    code, out, _ = ssmd("env", "diff", "prod", "prod", "--dir", str(envs))
    assert out.strip() == "no differences"


def test_diff_invalid_input(envs: Path) -> None:
    code, _, err = ssmd("env", "diff", "dev", str(INVALID / "replicas_7.yaml"), "--dir", str(envs))
    assert code == 1
    assert "streams.replicas: 7 is greater than the maximum 5" in err
    code, _, err = ssmd("env", "diff", "dev", "nope", "--dir", str(envs))
    assert code == 1 and "no environment definition at" in err and "known in" in err


def test_promote(envs: Path) -> None:
    staging = envs / "staging.yaml"
    staging.write_text(
        (envs / "prod.yaml")
        .read_text()
        .replace("name: prod", "name: staging")
        .replace("replicas: 3", "replicas: 1")
        .replace("      - XRP/USD\n", "      - XRP/USD\n      - ADA/USD\n")
    )
    before = (envs / "prod.yaml").read_bytes()
    code, out, _ = ssmd(
        "env", "promote", "staging", "--to", "prod", "--dry-run", "--dir", str(envs)
    )
    assert code == 0
    assert out.splitlines() == [
        "+ feeds.kraken.instruments: ADA/USD",
        f"{staging} would change {envs / 'prod.yaml'}: 1 change(s)",
    ]
    assert (envs / "prod.yaml").read_bytes() == before
    code, out, _ = ssmd("env", "promote", "staging", "--to", "prod", "--json", "--dir", str(envs))
    assert code == 0
    doc = json.loads(out)
    assert doc["written"] is True and len(doc["changes"]) == 1
    assert "      - ADA/USD\n" in (envs / "prod.yaml").read_text()
    assert "  replicas: 3\n" in (envs / "prod.yaml").read_text()


def test_promote_refused(envs: Path) -> None:
    before = (envs / "prod.yaml").read_bytes()
    code, _, err = ssmd("env", "promote", "dev", "--to", "prod", "--dir", str(envs))
    assert code == 1
    assert "unknown feed 'kraken'" in err
    assert "prod.yaml is unchanged" in err
    assert (envs / "prod.yaml").read_bytes() == before


def test_schema() -> None:
    code, out, _ = ssmd("env", "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "ssmd environment definition"
    assert "Feed" in schema["$defs"]


def test_real_exit_codes(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "ssmd"
    bad = subprocess.run(
        [exe, "env", "validate", str(INVALID / "inline_secret.yaml")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "inline secrets are not allowed" in bad.stderr
    usage = subprocess.run([exe, "env", "validate"], capture_output=True, text=True)
    assert usage.returncode == 2
    missing = subprocess.run(
        [exe, "env", "diff", "a", "b", "--dir", str(tmp_path)], capture_output=True, text=True
    )
    assert missing.returncode == 1
    # the console wraps long lines; compare with whitespace normalized
    text = " ".join(missing.stderr.split())
    assert f"error: no environment definition at {tmp_path / 'a.yaml'}" in text
