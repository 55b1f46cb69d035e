"""Gateway benchmark: WebSocket fan-out, publish → client latency, REST symbol-hour.

    python bench/gateway.py [--quick] [--json]

Three processes, as deployed: this one (NATS, Postgres, the publisher), one gateway
process (`create_app` under uvicorn, the figure's subject) and one process holding the
100 WebSocket clients. Entitlement checks are on: the clients' key is entitled to
symbol globs and record types, so every record is checked per subscription.

1. fan-out: 100 clients subscribe to every trade of the feed; the publisher sends as
   fast as JetStream stores; figure = records delivered to all clients per second.
2. latency: 100 symbols, one per client, 10k msgs/s in total (100/s each); figure =
   p50/p99 of client receive time − the record's ts_recv (set at publish).
   In the same phase a bare nats-py JetStream ordered consumer of the same subjects (one
   more process, no gateway) measures the same records: its p50/p99 is the latency limit
   on this machine at this moment, and `ratio_p99_to_nats` the gateway's share. The load
   average and the CPU seconds the gateway and the clients used in this phase are
   reported too: on shared cores the tail is mostly other processes.
3. limit: the bare nats-py subscribe rate (core subscription, callback per message) in
   one Python process — what one gateway process could ingest at most.
4. REST: p50/p99 of `GET /v1/trades` for one symbol-hour (the recent window, from the
   stream) if the endpoint answers, else "not measured".

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop  # the children run on uvloop, like the gateway under uvicorn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

SUBJECT_FEED = "sim"
PX = 10**9


# -- child: the gateway ------------------------------------------------------------------


def serve(port: int, pg_url: str, nats_url: str) -> None:
    import uvicorn

    from ssmd.gateway.app import create_app
    from ssmd.gateway.settings import GatewaySettings
    from ssmd.gateway.state import Gateway
    from ssmd.gateway.stream import StreamOptions

    settings = GatewaySettings(
        definition=definition(), pg_url=pg_url, nats_url=nats_url, rate=0,
        status_interval_s=0, data_dir=Path(tempfile.mkdtemp(prefix="ssmd-bench-gw-")),
    )  # fmt: skip
    gw = Gateway(settings)
    gw.stream_options = StreamOptions(queue_items=200_000, queue_bytes=256 << 20)
    uvicorn.run(
        create_app(settings, gateway=gw), host="127.0.0.1", port=port, log_level="warning",
        ws="websockets-sansio", ws_max_size=1 << 20, ws_per_message_deflate=False,
    )  # fmt: skip


# -- child: the clients ------------------------------------------------------------------


async def clients(port: int, token: str, n: int, mode: str, seconds: float) -> dict:
    """n WebSocket clients in one process (picows: the measuring instrument must cost
    little next to the gateway it measures on shared cores)."""
    import orjson
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    url = f"ws://127.0.0.1:{port}/v1/stream"
    counts = [0] * n
    lat: list[float] = []
    first = [0.0]
    last = [0.0]
    gaps = [0]

    class Client(WSListener):
        def __init__(self, i: int) -> None:
            self.i = i

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()
                return
            now = time.time_ns()
            data = frame.get_payload_as_bytes()
            if data.startswith(b'{"op"') and b"\n" not in data:
                if b'"gap"' in data:
                    gaps[0] += 1
                return
            counts[self.i] += data.count(b"\n") + 1 - data.count(b'{"op"')  # + a heartbeat?
            if not first[0]:
                first[0] = time.perf_counter()
            last[0] = time.perf_counter()
            if mode == "latency":
                for line in data.split(b"\n"):
                    rec = orjson.loads(line)
                    if "ts_recv" in rec:
                        lat.append((now - rec["ts_recv"]) / 1e6)

    async def one(i: int) -> WSTransport:
        transport, _ = await ws_connect(
            lambda: Client(i), url, extra_headers={"Authorization": f"Bearer {token}"},
            max_frame_size=64 << 20,
        )  # fmt: skip
        symbols = ["*"] if mode == "fanout" else [f"S{i:03d}-USD"]
        sub = {"op": "subscribe", "id": i, "feed": "sim", "types": ["trade"], "symbols": symbols}
        transport.send(WSMsgType.TEXT, orjson.dumps(sub))
        return transport

    transports = await asyncio.gather(*(one(i) for i in range(n)))
    await asyncio.sleep(1.0)  # subscriptions granted, sources started
    print("READY", flush=True)
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu0
    for t in transports:
        t.disconnect()
    span = max(last[0] - first[0], 1e-9)
    return {"delivered": sum(counts), "span_s": span, "gaps": gaps[0], "cpu_s": cpu, **summary(lat)}


async def bare_latency(nats_url: str, seconds: float) -> dict:
    """publish → subscriber latency of a bare nats-py JetStream ordered consumer (reading
    the stream from Python without the gateway): the limit the gateway's figure is compared
    with. The gateway itself reads through `ssmd.bus.subscriber` (batches per read)."""
    import msgspec
    import nats
    from nats.js.api import ConsumerConfig, DeliverPolicy

    from ssmd.bus.subjects import stream_name

    class Head(msgspec.Struct):
        ts_recv: int = 0

    head = msgspec.json.Decoder(Head)
    nc = await nats.connect(nats_url, pending_size=64 << 20)
    lat: list[float] = []

    async def cb(msg) -> None:
        lat.append((time.time_ns() - head.decode(msg.data).ts_recv) / 1e6)

    await nc.jetstream().subscribe(
        "md.dev.sim.trade.>", stream=stream_name("dev", "sim"), cb=cb, ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
        pending_msgs_limit=1_000_000, pending_bytes_limit=512 << 20,
    )  # fmt: skip
    print("READY", flush=True)
    await asyncio.sleep(seconds)
    await nc.close()
    return summary(lat)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, idle: float = 0.1, timeout: float = 30.0) -> None:
    """Wait until the process uses under `idle` of a core (the previous phase's backlog
    is done), so one phase's tail is not measured as the next one's latency."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < idle * 0.5:
            return


# -- helpers -----------------------------------------------------------------------------


def definition():
    import msgspec

    from ssmd import spec

    env = spec.load(REPO / "environments" / "dev.yaml")
    syms = [f"S{i:03d}-USD" for i in range(100)] + ["BTC-USD"]
    feed = msgspec.structs.replace(env.feeds["sim"], instruments=syms)
    return msgspec.structs.replace(env, feeds={"sim": feed})


def trade_payloads(n: int, symbols: list[str], start: int = 0):
    from ssmd.bus.message import record_message
    from ssmd.model.records import Trade

    out = []
    t = time.time_ns()
    for i in range(start, start + n):
        r = Trade(
            feed="sim", venue="sim", symbol=symbols[i % len(symbols)], ts_event=t + i,
            ts_recv=t + i, price=(100 + i % 7) * PX, size=PX, side="buy", trade_id=str(i),
        )  # fmt: skip
        out.append(record_message("dev", r, "unknown"))
    return out


async def publish(nats_url: str, msgs, rate: float | None, stamp: bool) -> float:
    """Core publishes into the stream (JetStream stores them); paced when `rate`."""
    import msgspec
    import nats

    from ssmd.model.codec import decode, encode

    nc = await nats.connect(nats_url, pending_size=256 << 20)
    t0 = time.perf_counter()
    try:
        chunk = 10 if rate else 1000  # paced: a burst per ms, not per 10 ms
        for k in range(0, len(msgs), chunk):
            for subj, payload, mid in msgs[k : k + chunk]:
                if stamp:  # ts_recv = now: the latency probe
                    rec = msgspec.structs.replace(decode(payload), ts_recv=time.time_ns())
                    payload = encode(rec)
                await nc.publish(subj, payload, headers={"Nats-Msg-Id": mid})
            if rate:  # sleep, or at least yield: stamped records must not wait unflushed
                due = t0 + (k + chunk) / rate
                await asyncio.sleep(max(due - time.perf_counter(), 0))
            elif k % 20_000 == 0:
                await nc.flush()
        await nc.flush()
    finally:
        await nc.close()
    return time.perf_counter() - t0


async def bare_subscribe_rate(nats_url: str, n: int) -> float:
    """msgs/s a nats-py core subscription callback receives (the Python ingest limit)."""
    import nats

    sub_nc = await nats.connect(nats_url, pending_size=256 << 20)
    got = [0]
    done = asyncio.Event()
    t = [0.0, 0.0]

    async def cb(msg) -> None:
        if not got[0]:
            t[0] = time.perf_counter()
        got[0] += 1
        if got[0] == n:
            t[1] = time.perf_counter()
            done.set()

    await sub_nc.subscribe("bench.bare.>", cb=cb, pending_msgs_limit=n + 10)
    pub = await nats.connect(nats_url, pending_size=256 << 20)
    payload = trade_payloads(1, ["BTC-USD"])[0][1]
    for i in range(n):
        await pub.publish(f"bench.bare.{i % 10}", payload)
        if i % 10_000 == 0:
            await pub.flush()
    await pub.flush()
    await asyncio.wait_for(done.wait(), 120)
    await pub.close()
    await sub_nc.close()
    return n / max(t[1] - t[0], 1e-9)


def summary(lat_ms: list[float]) -> dict:
    """What the parent needs of a child's latencies (a short line: the children's stdout
    lost data beyond 64 KiB after a uvloop run)."""
    return {"samples": len(lat_ms), "p50_ms": pct(lat_ms, 50), "p99_ms": pct(lat_ms, 99)}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def child(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip


def wait_ready(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("READY"):
            return
    raise RuntimeError("client process died")


def result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=300)
    return json.loads(out.strip().splitlines()[-1])


# -- main --------------------------------------------------------------------------------


async def rest_probe(port: int, token: str, n: int) -> tuple[float | None, float | None, str]:
    import httpx

    now = time.time_ns()
    hour = 3600 * 10**9
    params = {"feed": "sim", "symbol": "BTC-USD", "from": str(now - hour), "to": str(now + 1)}
    times = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            r = await client.get(
                "/v1/trades", params=params, headers={"Authorization": f"Bearer {token}"}
            )
            times.append((time.perf_counter() - t0) * 1e3)
            if r.status_code != 200:
                return None, None, f"HTTP {r.status_code}: {r.text[:200]}"
    return pct(times, 50), pct(times, 99), f"{n} requests"


def main(quick: bool) -> dict:
    from ssmd.meta import clients as meta_clients
    from ssmd.meta import connect, keys
    from ssmd.stack.nats import NatsServer
    from ssmd.stack.ports import free_port
    from ssmd.stack.postgres import PostgresServer

    tmp = Path(tempfile.mkdtemp(prefix="ssmd-bench-gateway-"))
    nats_srv = NatsServer(tmp / "nats").start()
    pg = PostgresServer(tmp / "pg", durable=False).start()
    procs: list[subprocess.Popen] = []
    try:
        with connect(pg.url) as conn:
            meta_clients.sync_clients(conn, "dev", [{
                "id": "bench", "type": "non-display", "scopes": ["stream", "read"],
                "entitlements": [{"feeds": ["sim"], "symbols": ["S*-USD", "BTC-*"],
                                  "types": ["trade", "quote"]}],
            }], actor="bench")  # fmt: skip
            token = keys.create(conn, "dev", "bench", "bench", scopes=["stream", "read"]).token

        async def provision() -> None:
            import nats

            from ssmd.bus.provision import ensure_streams

            nc = await nats.connect(nats_srv.url)
            await ensure_streams(nc.jetstream(), definition())
            await nc.close()

        asyncio.run(provision())
        port = free_port()
        gw = child(["--serve", str(port), pg.url, nats_srv.url])
        procs.append(gw)
        deadline = time.time() + 30
        import socket

        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)

        n_clients = 100
        syms = [f"S{i:03d}-USD" for i in range(100)]
        # 1. fan-out
        n_fan = 20_000 if quick else 100_000
        fan = child(
            ["--clients", str(port), token, str(n_clients), "fanout", "8" if quick else "25"]
        )
        procs.append(fan)
        wait_ready(fan)
        pub_s = asyncio.run(publish(nats_srv.url, trade_payloads(n_fan, syms), None, False))
        fan_res = result(fan)
        delivered_rate = fan_res["delivered"] / fan_res["span_s"]
        settle(gw.pid)
        # 2. latency at 10k msgs/s
        n_lat = 30_000 if quick else 100_000
        msgs = trade_payloads(n_lat, syms, start=10_000_000)  # before the clients' clock runs
        window = str(n_lat / 10_000 + 8)
        lat = child(["--clients", str(port), token, str(n_clients), "latency", window])
        bare = child(["--bare", nats_srv.url, window])
        procs += [lat, bare]
        wait_ready(lat)
        wait_ready(bare)
        load_start = os.getloadavg()
        gw_cpu = cpu_seconds(gw.pid)
        asyncio.run(publish(nats_srv.url, msgs, 10_000, True))
        load_end = os.getloadavg()
        settle(gw.pid)  # its backlog done; the idle rest of the clients' window not counted
        gw_cpu = cpu_seconds(gw.pid) - gw_cpu
        lat_res = result(lat)
        bare_res = result(bare)
        # 3. limit
        limit = asyncio.run(bare_subscribe_rate(nats_srv.url, 100_000 if quick else 300_000))
        # 4. REST
        rest_p50, rest_p99, rest_note = asyncio.run(rest_probe(port, token, 20 if quick else 100))
        out = {
            "bench": "gateway",
            "quick": quick,
            "clients": n_clients,
            "fanout_published": n_fan,
            "fanout_publish_msgs_per_s": round(n_fan / pub_s),
            "delivered": fan_res["delivered"],
            "delivered_expected": n_fan * n_clients,
            "delivered_msgs_per_s": round(delivered_rate),
            "slow_consumer_gaps": fan_res["gaps"],
            "latency_rate_msgs_per_s": 10_000,
            "latency_samples": lat_res["samples"],
            "latency_expected": n_lat,
            "p50_ms": round(lat_res["p50_ms"], 3),
            "p99_ms": round(lat_res["p99_ms"], 3),
            "nats_p50_ms": round(bare_res["p50_ms"], 3),
            "nats_p99_ms": round(bare_res["p99_ms"], 3),
            "nats_samples": bare_res["samples"],
            "ratio_p99_to_nats": round(lat_res["p99_ms"] / max(bare_res["p99_ms"], 1e-9), 2),
            "gateway_cpu_us_per_record": round(gw_cpu / n_lat * 1e6, 1),
            "clients_cpu_us_per_record": round(lat_res["cpu_s"] / n_lat * 1e6, 1),
            "loadavg_latency": [round(x, 2) for x in (*load_start[:1], *load_end[:1])],
            "rest_p50_ms": None if rest_p50 is None else round(rest_p50, 2),
            "rest_p99_ms": None if rest_p99 is None else round(rest_p99, 2),
            "rest_note": rest_note if rest_p50 is not None else f"not measured: {rest_note}",
            "limit_nats_subscribe_msgs_per_s": round(limit),
            "ratio_delivered_to_limit": round(delivered_rate / limit, 3),
            "cpus": os.cpu_count(),
        }
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        pg.stop()
        nats_srv.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", nargs=3, metavar=("PORT", "PG", "NATS"))
    ap.add_argument("--clients", nargs=5, metavar=("PORT", "TOKEN", "N", "MODE", "SECONDS"))
    ap.add_argument("--bare", nargs=2, metavar=("NATS", "SECONDS"))
    a = ap.parse_args()

    if a.serve:
        serve(int(a.serve[0]), a.serve[1], a.serve[2])
        sys.exit(0)
    if a.clients or a.bare:
        if a.clients:
            port, token, n, mode, secs = a.clients
            res = uvloop.run(clients(int(port), token, int(n), mode, float(secs)))
        else:
            res = uvloop.run(bare_latency(a.bare[0], float(a.bare[1])))
        print(json.dumps(res), flush=True)
        sys.exit(0)
    figures = main(a.quick)
    if not a.json:
        for k, v in figures.items():
            print(f"{k:34} {v}")
    print(json.dumps(figures))
