"""The conftest fixtures: they answer, they are lazy, and they leave nothing behind
even when tests fail (checked by running a failing pytest session in a subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssmd.stack.aio import run_async
from ssmd.stack.ports import port_open
from ssmd.stack.process import pid_alive
from ssmd.stack.s3 import S3Server
from ssmd.stack.temporal import TemporalServer, describe_namespace

REPO = Path(__file__).resolve().parents[2]


def test_s3_server_fixture(s3_server: S3Server) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
    )
    s3.create_bucket(Bucket="fixture-bucket")
    s3.put_object(Bucket="fixture-bucket", Key="a/b.txt", Body=b"abc")
    assert s3.get_object(Bucket="fixture-bucket", Key="a/b.txt")["Body"].read() == b"abc"
    s3.delete_object(Bucket="fixture-bucket", Key="a/b.txt")
    s3.delete_bucket(Bucket="fixture-bucket")


def test_temporal_server_fixture(temporal_server: TemporalServer) -> None:
    assert temporal_server.address == f"127.0.0.1:{temporal_server.port}"
    assert run_async(describe_namespace(temporal_server.address, temporal_server.namespace))


# --- a whole pytest session in a subprocess -------------------------------------------

CONFTEST = f"""
import importlib.util

_path = {str(REPO / "tests" / "conftest.py")!r}
_spec = importlib.util.spec_from_file_location("ssmd_conftest", _path)
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
globals().update({{k: v for k, v in vars(_mod).items() if not k.startswith("__")}})
"""

TESTS = """
import json, os, tempfile
from pathlib import Path

def _record(servers):
    tmp = Path(tempfile.gettempdir())
    ssmd_dirs = sorted(p.name.rsplit("-", 1)[0] for p in tmp.glob("ssmd-test-*"))
    Path(os.environ["LEAK_RECORD"]).write_text(json.dumps({
        "dirs": [str(s.data_dir) for s in servers],
        "pids": [s.pid for s in servers],
        "ports": [p for s in servers for p in s.ports()],
        "started": ssmd_dirs,
    }))

def test_only_nats(nats_server, nats_url):
    _record([nats_server])
    assert False, "deliberate failure"

def test_nats_and_pg(nats_server, pg_server, pg_url):
    _record([nats_server, pg_server])
    assert False, "deliberate failure"
"""


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ssmd-test-session-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_session(private_tmp: Path, select: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    suite = private_tmp / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_leaky.py").write_text(TESTS)
    record = private_tmp / "record.json"
    env = dict(os.environ, TMPDIR=str(private_tmp), LEAK_RECORD=str(record))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", select, str(suite)],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return proc, json.loads(record.read_text())


def assert_nothing_left(private_tmp: Path, record: dict) -> None:
    for d in record["dirs"]:
        assert not Path(d).exists(), f"{d} not removed"
    for pid in record["pids"]:
        assert not pid_alive(pid), f"pid {pid} still alive"
    for port in record["ports"]:
        assert not port_open(port), f"port {port} still open"
    assert sorted(p.name for p in private_tmp.glob("ssmd-test-*")) == []


def test_failing_session_cleans_up_and_is_lazy(private_tmp: Path) -> None:
    proc, record = run_session(private_tmp, "only_nats")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "deliberate failure" in proc.stdout
    assert record["started"] == ["ssmd-test-nats"]  # nothing else was started
    assert_nothing_left(private_tmp, record)


def test_failing_session_with_postgres_cleans_up(private_tmp: Path) -> None:
    proc, record = run_session(private_tmp, "nats_and_pg")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "deliberate failure" in proc.stdout
    assert record["started"] == ["ssmd-test-nats", "ssmd-test-pg"]
    assert_nothing_left(private_tmp, record)
