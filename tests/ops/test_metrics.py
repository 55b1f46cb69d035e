"""/metrics, /healthz and /readyz over a real socket; the body parses as Prometheus text."""

from __future__ import annotations

import asyncio
import json

from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from ssmd.ops.metrics import MetricsServer, latency_histogram, registry


async def http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def get(port: int, path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def test_metrics_health_ready() -> None:
    reg = registry()
    frames = Counter("ssmd_frames_in", "Frames received", ["feed"], registry=reg)
    frames.labels("kr").inc(42)
    hist = latency_histogram(reg, "ssmd_read_to_ack_seconds", "Read to ack", ("feed",))
    for v in (0.0002, 0.003, 0.003, 0.2):
        hist.labels("kr").observe(v)
    ready = {"ok": False}

    async def main() -> None:
        server = MetricsServer(
            reg,
            health=lambda: (True, {"connections": 2}),
            ready=lambda: (ready["ok"], {"subscribed": ready["ok"]}),
        )
        async with server:
            status, headers, body = await http(server.port, get(server.port, "/metrics"))
            assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
            assert int(headers["Content-Length"]) == len(body)
            families = {f.name: f for f in text_string_to_metric_families(body.decode())}
            (sample,) = [s for s in families["ssmd_frames_in"].samples if s.name.endswith("_total")]
            assert sample.value == 42 and sample.labels == {"feed": "kr"}
            buckets = {
                s.labels["le"]: s.value
                for s in families["ssmd_read_to_ack_seconds"].samples
                if s.name.endswith("_bucket")
            }
            assert buckets["0.00025"] == 1 and buckets["0.005"] == 3 and buckets["+Inf"] == 4

            status, _, body = await http(server.port, get(server.port, "/healthz"))
            assert status == 200 and json.loads(body) == {"status": "ok", "connections": 2}
            status, _, body = await http(server.port, get(server.port, "/readyz"))
            assert status == 503 and json.loads(body) == {"status": "fail", "subscribed": False}
            ready["ok"] = True
            status, _, body = await http(server.port, get(server.port, "/readyz?verbose=1"))
            assert status == 200 and json.loads(body)["subscribed"] is True

            status, headers, body = await http(server.port, get(server.port, "/metrics", "HEAD"))
            assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
            assert (await http(server.port, get(server.port, "/nope")))[0] == 404
            assert (await http(server.port, get(server.port, "/metrics", "POST")))[0] == 405
            # garbage and half requests do not take the server down
            assert (await http(server.port, b"\r\n\r\n"))[0] == 405
            _, w = await asyncio.open_connection("127.0.0.1", server.port)
            w.write(b"GET /metr")
            w.close()
            assert (await http(server.port, get(server.port, "/healthz")))[0] == 200

    asyncio.run(main())


def test_failing_check_is_a_503_with_the_reason() -> None:
    def broken() -> tuple[bool, dict[str, object]]:
        raise RuntimeError("journal dir gone")

    async def main() -> None:
        async with MetricsServer(registry(), health=broken) as server:
            status, _, body = await http(server.port, get(server.port, "/healthz"))
            assert status == 503
            assert json.loads(body) == {
                "status": "fail",
                "error": "RuntimeError: journal dir gone",
            }

    asyncio.run(main())
