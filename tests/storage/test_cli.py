"""`ssmd shipper` and `ssmd retention apply` as commands: JSON output, exit codes, the
status heartbeat, /metrics + /healthz, SIGTERM, and clear errors for bad secrets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nats
import pytest
from typer.testing import CliRunner

from ssmd.cli.main import app
from ssmd.cli.output import CliError
from ssmd.ops.status import read_status
from ssmd.stack.ports import free_port

from .helpers import HOUR, audit_actions, catalog_rows, make_bucket, s3_keys, write_segments

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
DEFAULT_RETENTION = "    journal: 1d\n    raw: 7d\n    normalized: 7d\n"


def env_file(tmp_path: Path, storage_extra: str = "", retention: str = "") -> Path:
    """dev.yaml with its storage section replaced (data dir, object store, retention)."""
    text = (REPO / "environments" / "dev.yaml").read_text()
    start, end = text.index("storage:\n"), text.index("\nstreams:")
    storage = f"storage:\n  data_dir: {tmp_path / 'data'}\n{storage_extra}  retention:\n" + (
        retention or DEFAULT_RETENTION
    )
    path = tmp_path / "envs" / "dev.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text[:start] + storage + text[end:])
    return path


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def test_shipper_once_json_and_heartbeat(tmp_path: Path, pg_url: str, nats_url: str) -> None:
    spec = env_file(tmp_path)
    recent = (time.time_ns() // HOUR - 3) * HOUR  # inside the 1-day local window
    segs = write_segments(tmp_path / "data", hours=2, start=recent)
    args = ("shipper", "--env", str(spec), "--once", "--json", "--pg-url", pg_url,
            "--nats-url", nats_url, "--metrics-port", "-1")  # fmt: skip
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout.strip().splitlines()[-1])
    assert doc["shipped"] == [m.key for m in segs]
    assert (doc["quarantined"], doc["failed"], doc["deleted_local"], doc["error"]) == (
        [], [], [], ""
    )  # fmt: skip
    objects = tmp_path / "data" / "objects"
    for m in segs:
        assert (objects / m.key).read_bytes() == (tmp_path / "data" / m.key).read_bytes()
    assert all(r.verified for r in catalog_rows(pg_url).values())

    async def status() -> list[dict]:
        nc = await nats.connect(nats_url)
        try:
            return await read_status(nc, "dev")
        finally:
            await nc.close()

    (beat,) = asyncio.run(status())
    assert (beat["component"], beat["key"]) == ("shipper", "shipper.-.-")
    assert beat["totals"]["shipped"] == 2 and beat["state"] == "ok"

    # a rerun ships nothing again and keeps the local copies (inside the window)
    again = json.loads(invoke(*args).stdout.strip().splitlines()[-1])
    assert (again["shipped"], again["found"], again["deleted_local"]) == ([], [], [])
    assert all((tmp_path / "data" / m.key).exists() for m in segs)


def test_shipper_to_s3_with_secret_refs(tmp_path: Path, pg_url: str, s3_server) -> None:
    bucket = make_bucket(s3_server)
    secret = tmp_path / "s3-secret"
    secret.write_text(s3_server.secret_key + "\n")
    extra = (
        "  object_store:\n"
        f"    url: s3://{bucket}/archive\n"
        f"    endpoint: {s3_server.url}\n"
        f"    region: {s3_server.region}\n"
        "    credentials:\n"
        "      access_key_id: env:SSMD_TEST_S3_KEY\n"
        f"      secret_access_key: file:{secret}\n"
    )
    spec = env_file(tmp_path, extra)
    (m,) = write_segments(tmp_path / "data", hours=1)
    manifest_size = (tmp_path / "data" / (m.key + ".manifest.json")).stat().st_size
    args = ("shipper", "--env", str(spec), "--once", "--json", "--pg-url", pg_url,
            "--metrics-port", "-1")  # fmt: skip
    with pytest.raises(CliError) as err:
        invoke(*args, env={"SSMD_TEST_S3_KEY": ""})
    assert err.value.code == 1
    assert str(err.value) == (
        "secret reference env:SSMD_TEST_S3_KEY (storage.object_store.credentials."
        "access_key_id): SSMD_TEST_S3_KEY is set but empty"
    )
    ok = invoke(*args, env={"SSMD_TEST_S3_KEY": s3_server.access_key})
    assert ok.exit_code == 0, ok.output
    assert s3_keys(s3_server, bucket) == {
        f"archive/{m.key}": m.size,
        f"archive/{m.key}.manifest.json": manifest_size,
    }


def test_shipper_once_gives_up_when_store_down(tmp_path: Path, pg_url: str) -> None:
    extra = (
        "  object_store:\n"
        "    url: s3://nowhere-bucket\n"
        f"    endpoint: http://127.0.0.1:{free_port()}\n"
        "    credentials:\n"
        "      access_key_id: env:K\n"
        "      secret_access_key: env:K\n"
    )
    spec = env_file(tmp_path, extra)
    (m,) = write_segments(tmp_path / "data", hours=1)
    proc = subprocess.run(
        [sys.executable, "-m", "ssmd.cli.main", "shipper", "--env", str(spec), "--once",
         "--json", "--pg-url", pg_url, "--metrics-port", "-1", "--give-up", "2",
         "--backoff-cap", "0.5", "--nats-url", "nats://127.0.0.1:1"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "K": "x"},
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "error: gave up after 2s: StoreUnavailable: object store head" in proc.stderr
    assert (tmp_path / "data" / m.key).exists()
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (doc["shipped"], doc["deleted_local"], doc["pending"]) == ([], [], 1)


def test_shipper_service_metrics_and_sigterm(tmp_path: Path, pg_url: str) -> None:
    spec = env_file(tmp_path)
    segs = write_segments(tmp_path / "data", hours=2)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssmd.cli.main", "shipper", "--env", str(spec), "--pg-url",
         pg_url, "--metrics-port", str(port), "--interval", "0.5", "--nats-url",
         "nats://127.0.0.1:1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        text = ""
        while 'ssmd_shipper_segments_total{outcome="shipped"} 2.0' not in text:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                continue  # not listening yet
        assert len([r for r in catalog_rows(pg_url).values() if r.verified]) == 2
        assert "ssmd_shipper_backlog_segments 0.0" in text
        assert "ssmd_shipper_up 1.0" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert json.loads(resp.read())["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    logs = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    shipped = [x["key"] for x in logs if x["msg"] == "segment shipped"]
    assert shipped == [m.key for m in segs]
    assert any(x["level"] == "warning" and "heartbeat" in x["msg"] for x in logs)


def test_retention_cli_dry_run_then_execute(tmp_path: Path, pg_url: str) -> None:
    spec = env_file(tmp_path, retention="    journal: 1d\n    raw: 2d\n    normalized: 2d\n")
    segs = write_segments(tmp_path / "data", hours=2)
    shipped = invoke(
        "shipper", "--env", str(spec), "--once", "--json", "--pg-url", pg_url,
        "--metrics-port", "-1",
    )  # fmt: skip
    doc = json.loads(shipped.stdout.strip().splitlines()[-1])
    keys = [m.key for m in segs]
    assert doc["shipped"] == keys and doc["deleted_local"] == keys  # 2024: past the window
    objects = tmp_path / "data" / "objects"
    assert sorted(p.relative_to(objects).as_posix() for p in objects.rglob("*.zst")) == keys

    dry = invoke("retention", "apply", "--env", str(spec), "--json", "--pg-url", pg_url)
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["executed"] is False
    assert [i["key"] for i in plan["tiers"]["raw"]["items"]] == keys
    assert plan["tiers"]["raw"]["bytes"] == sum(m.size for m in segs)
    assert plan["tiers"]["journal"]["items"] == [] and plan["tiers"]["normalized"]["items"] == []
    assert sorted(p.relative_to(objects).as_posix() for p in objects.rglob("*.zst")) == keys

    table = invoke("retention", "apply", "--env", str(spec), "--pg-url", pg_url)
    assert "raw: 2 item(s)" in table.output and "would delete" in table.output
    assert "dry run: nothing deleted" in table.output

    done = invoke(
        "retention", "apply", "--env", str(spec), "--json", "--execute", "--pg-url", pg_url,
        "--actor", "carol",
    )  # fmt: skip
    result = json.loads(done.stdout)
    assert result["executed"] is True and result["tiers"]["raw"]["deleted"] == keys
    assert list(objects.rglob("*.zst")) == [] and list(objects.rglob("*.json")) == []
    actions = audit_actions(pg_url)
    assert actions[-2:] == [("segment.delete_object", k) for k in keys]
