"""Serving: rate limits (429 + Retry-After), `ssmd gateway` as a process with TLS, the KV
heartbeat and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ssmd.ops.status import read_status

from .rest_app import ENV, make
from .rest_helpers import definition, issue, seed_clients

REPO = Path(__file__).resolve().parents[2]


def test_rate_limit_429_with_retry_after(pg_url: str, tmp_path: Path) -> None:
    gen = make(pg_url, tmp_path)
    g = next(gen)
    try:
        g.gw.auth.limiter.rate, g.gw.auth.limiter.burst = 0.5, 3.0
        codes = [g.get("/v1/feeds", "alice").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = g.get("/v1/feeds", "alice")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert "rate limit" in r.json()["message"] and r.json()["error"] == "rate_limited"
        assert g.get("/v1/feeds", "ops").status_code == 200  # per key
    finally:
        gen.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_gateway_process_tls_heartbeat_and_sigterm(
    pg_url: str, nats_url: str, tmp_path: Path
) -> None:
    seed_clients(pg_url, ENV, [{"id": "ops", "type": "non-display", "scopes": ["read"],
                                "entitlements": [{"feeds": ["*"]}]}])  # fmt: skip
    token = issue(pg_url, ENV, "ops").token
    cert, key = self_signed(tmp_path)
    port = free_port()
    env_file = tmp_path / "dev.yaml"
    env_file.write_text((REPO / "environments" / "dev.yaml").read_text())
    definition(tmp_path)  # validates the copy loads
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssmd.cli.main", "gateway", "--env", str(env_file),
         "--port", str(port), "--pg-url", pg_url, "--nats-url", nats_url,
         "--data-dir", str(tmp_path), "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
        env={**os.environ, "SSMD_PG_URL": pg_url},
    )  # fmt: skip
    ctx = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.time() + 30
        while True:
            try:
                r = httpx.get(f"https://127.0.0.1:{port}/v1/health", verify=ctx, timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.time() < deadline, "gateway did not come up"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["env"] == "dev"
        feeds = httpx.get(f"https://127.0.0.1:{port}/v1/feeds", verify=ctx,
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert feeds.status_code == 200 and feeds.json()["feeds"][0]["name"] == "sim"

        async def beats() -> list[dict]:
            import nats

            nc = await nats.connect(nats_url)
            try:
                for _ in range(50):
                    found = [d for d in await read_status(nc, "dev") if d["component"] == "gateway"]
                    if found:
                        return found
                    await asyncio.sleep(0.2)
                return []
            finally:
                await nc.close()

        (beat,) = asyncio.run(beats())
        assert beat["env"] == "dev" and beat["draining"] is False
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        logs = proc.stderr.read().decode() if proc.stderr else ""
        assert '"msg": "gateway stopped"' in logs or "gateway stopped" in logs
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
