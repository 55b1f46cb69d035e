"""End-to-end acceptance: the homelab as a newcomer runs it (issue 7).

`ssmd up` on a fresh data dir (a real subprocess) → the replay venue → the connector →
JetStream and the journal → the shipper → an S3-compatible server (moto) → the
reprocessor → Parquet in the bucket → REST `/v1/trades` and WebSocket `/v1/stream` with
the admin key `up` printed once → the README's hot-reload step (add an instrument with
the CLI, apply: its records arrive within seconds, the other instruments keep flowing on
the same venue connection) → `ssmd down` leaves no process and no port behind.

The definition is dev.yaml with two changes only: segments close every 5 s (so the
shipper has something to ship within the test) and the object store is the moto bucket,
with credentials as `env:` secret references.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
import nats
import pyarrow.parquet as pq
import pytest
import websockets

from ssmd.stack.ports import port_open
from ssmd.stack.process import pid_alive
from ssmd.stack.state import StackState, read_state

REPO = Path(__file__).resolve().parents[1]
BUCKET = "ssmd-acceptance"
PREFIX = "homelab"
T = TypeVar("T")


def ssmd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def poll(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    """check() until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def bucket(s3_server: Any) -> Any:
    s3 = boto3.client("s3", **s3_server.credentials)
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    s3.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def envdir(tmp_path: Path, s3_server: Any) -> Path:
    target = tmp_path / "environments"
    shutil.copytree(REPO / "environments", target)
    dev = target / "dev.yaml"
    text = dev.read_text()
    store = (
        f"  object_store:\n    url: s3://{BUCKET}/{PREFIX}\n    endpoint: {s3_server.url}\n"
        f"    region: {s3_server.region}\n    credentials:\n"
        "      access_key_id: env:ACCEPT_S3_KEY\n      secret_access_key: env:ACCEPT_S3_SECRET\n"
    )
    text = text.replace("    rotate_every: 10m\n", "    rotate_every: 5s\n")
    text = re.sub(r"  # object_store\.url left empty.*\n", store, text)
    assert "rotate_every: 5s" in text and "object_store:" in text
    dev.write_text(text)
    return target


class Up:
    """`ssmd up` in the background; what it printed (key, gateway) parsed from stdout."""

    def __init__(self, envdir: Path, data: Path, s3_server: Any) -> None:
        argv = [sys.executable, "-m", "ssmd.cli.main", "up", "--env", "dev", "--dir",
                str(envdir), "--data-dir", str(data), "--reprocess-every", "3"]  # fmt: skip
        env = {**os.environ, "COLUMNS": "300", "ACCEPT_S3_KEY": s3_server.access_key,
               "ACCEPT_S3_SECRET": s3_server.secret_key}  # fmt: skip
        self.env = env
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if "stop       Ctrl-C" in line:
                return
        self.proc.kill()
        pytest.fail("ssmd up did not come up:\n" + "".join(self.lines))

    def field(self, pattern: str) -> str:
        for line in self.lines:
            found = re.search(pattern, line)
            if found:
                return found.group(1)
        pytest.fail(f"{pattern!r} not in the output of ssmd up:\n" + "".join(self.lines))


async def stream_trades(ws_url: str, key: str, n: int, timeout: float) -> list[dict[str, Any]]:
    """The first `n` BTC-USD trades the WebSocket delivers live."""
    got: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {key}"}
    async with websockets.connect(ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"op": "subscribe", "id": "acc", "feed": "sim",
                                  "types": ["trade"], "symbols": ["BTC-USD"]}))  # fmt: skip
        async with asyncio.timeout(timeout):
            while len(got) < n:
                frame = await ws.recv()
                for line in str(frame).splitlines():
                    msg = json.loads(line)
                    if msg.get("op") == "error":
                        raise AssertionError(f"stream error: {msg}")
                    if "op" not in msg:
                        got.append(msg)
    return got[:n]


def keys_under(s3: Any, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def archived_trade_ids(s3: Any) -> set[str]:
    """trade_id of every BTC-USD trade in the Parquet archive in the bucket."""
    ids: set[str] = set()
    for key in keys_under(s3, f"{PREFIX}/normalized/v1/dev/sim/trade/"):
        if key.endswith(".parquet"):
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            table = pq.read_table(io.BytesIO(body), columns=["symbol", "trade_id"])
            ids |= {t for s, t in zip(*table.to_pydict().values(), strict=True) if s == "BTC-USD"}
    return ids


def readme_commands(heading: str) -> list[list[str]]:
    """The commands of the README's first `sh` block after `heading`, as argv, exactly as
    written but for `.venv/bin/ssmd`, which becomes this interpreter's ssmd."""
    text = (REPO / "README.md").read_text()
    block = text.split(heading, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    out = []
    for line in block.splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            assert argv[0] == ".venv/bin/ssmd", line
            out.append([sys.executable, "-m", "ssmd.cli.main", *argv[1:]])
    return out


async def hot_reload(
    nats_url: str, commands: list[list[str]], cwd: Path, env: dict[str, str], added: str
) -> dict[str, Any]:
    """Run the README's commands while watching the stream; then wait for `added`'s
    records. Returns the command results, when apply returned, and every record seen."""
    nc = await nats.connect(nats_url)
    seen: list[tuple[float, dict[str, Any]]] = []

    async def on_msg(msg: Any) -> None:
        seen.append((time.monotonic(), json.loads(msg.data)))

    await nc.subscribe("md.dev.sim.>", cb=on_msg)
    results, applied = [], 0.0
    for argv in commands:
        run = await asyncio.to_thread(  # the loop keeps timing arrivals meanwhile
            subprocess.run, argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60
        )
        results.append(run)
        applied = applied or (time.monotonic() if "apply" in argv else 0.0)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        types = {r["type"] for _, r in seen if r["symbol"] == added}
        if {"book", "quote", "trade"} <= types:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # the others keep flowing after it
    await nc.close()
    return {"results": results, "applied": applied, "seen": seen}


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def test_homelab_end_to_end(envdir: Path, data: Path, s3_server: Any, bucket: Any) -> None:
    up = Up(envdir, data, s3_server)
    state: StackState | None = None
    try:
        state = read_state(data)
        assert state is not None and state.gateway_url
        key = up.field(r"API key\s+(ssmd_\S+)")
        gw = up.field(r"gateway\s+(http://\S+)")
        assert gw == state.gateway_url
        assert "gateway" in state.pids and "reprocess" in state.pids

        # live: replay venue → connector → JetStream → gateway → WebSocket, with the key
        ws_url = gw.replace("http://", "ws://") + "/v1/stream"
        streamed = asyncio.run(stream_trades(ws_url, key, n=5, timeout=30))
        assert {m["symbol"] for m in streamed} == {"BTC-USD"}
        assert {m.pop("id") for m in streamed} == {"acc"}  # the subscription id
        assert all(m["type"] == "trade" and m["feed"] == "sim" for m in streamed)
        wanted = {m["trade_id"] for m in streamed}

        # journal → shipper → S3; reprocessor → Parquet in S3 holding those very trades
        poll("raw segments in S3", lambda: keys_under(bucket, f"{PREFIX}/raw/dev/sim/"), 40)
        poll("the streamed trades in the Parquet archive",
             lambda: wanted <= archived_trade_ids(bucket), 40)  # fmt: skip

        # REST with the same key returns exactly the records the stream delivered
        t0 = min(m["ts_event"] for m in streamed)
        t1 = max(m["ts_event"] for m in streamed) + 1
        resp = httpx.get(
            f"{gw}/v1/trades",
            params={"feed": "sim", "symbol": "BTC-USD", "from": t0, "to": t1},
            headers={"X-API-Key": key},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        rest = {r["trade_id"]: r for r in resp.json()["records"]}
        for m in streamed:
            assert rest[m["trade_id"]] == m

        # the secmaster: reference data loaded at start, under the iid the records carry
        ref = httpx.get(f"{gw}/v1/instruments", params={"symbol": "BTC-USD"},
                        headers={"X-API-Key": key}, timeout=30)  # fmt: skip
        assert ref.status_code == 200, ref.text
        (btc,) = ref.json()["instruments"]
        assert (btc["venue_symbol"], btc["tick_size"]) == ("BTC/USD", "0.1")
        assert {m["iid"] for m in streamed} == {btc["iid"]}

        # a key is required
        assert httpx.get(f"{gw}/v1/feeds", timeout=10).status_code == 401

        # README tour: add an instrument with the CLI and watch it hot-reload, its commands
        # run verbatim from the checkout's root (./environments, ./data)
        t_reload = time.monotonic()
        commands = readme_commands("**Add an instrument**")
        assert [c[3] for c in commands] == ["feed", "env", "status"]
        added = commands[0][6]
        shell = {k: v for k, v in up.env.items() if not k.startswith("SSMD_")}
        got = asyncio.run(hot_reload(state.nats_url, commands, data.parent, shell, added))
        for run in got["results"]:
            assert run.returncode == 0, run.stdout + run.stderr
        assert "added 1 instrument(s) to sim" in got["results"][0].stdout
        assert "applied dev version 2" in got["results"][1].stdout
        assert "applied: version 2" in got["results"][2].stdout
        late = [(t - got["applied"], r) for t, r in got["seen"] if t > got["applied"]]
        mine = [(dt, r) for dt, r in late if r["symbol"] == added]
        assert {r["type"] for _, r in mine} >= {"book", "quote", "trade"}, mine
        assert min(dt for dt, _ in mine) < 5.0  # "within seconds" of apply returning
        assert next(r for _, r in mine if r["type"] == "book")["snapshot"]
        others = {"BTC-USD", "ETH-USD", "SOL-USD"}
        last_added = max(dt for dt, _ in mine)
        assert {r["symbol"] for dt, r in late if dt > last_added - 1} >= others  # still flowing
        assert [r for _, r in late if r["type"] == "gap"] == []  # no disconnect, no resync
        replay_log = (data / "logs" / "replay-sim.log").read_text()
        assert replay_log.count('"event":"connect"') == 1  # the venue saw one connection
        print(f"hot reload: {added}'s first record {min(dt for dt, _ in mine):.2f}s after "
              f"`env apply` returned; step took {time.monotonic() - t_reload:.1f}s")  # fmt: skip

        status = ssmd("status", "--data-dir", str(data), "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["gateway_url"] == gw
        assert all(p["running"] for p in report["processes"].values())
        assert any(c["key"].startswith("gateway.") for c in report["components"])

        down = ssmd("down", "--data-dir", str(data))
        assert down.returncode == 0, down.stderr
        assert up.proc.wait(timeout=60) == 0
    finally:
        if up.proc.poll() is None:  # a failure above: stop the children too, not just `up`
            ssmd("down", "--data-dir", str(data))
        up.proc.kill()
    assert state is not None
    ports = [p for ps in state.ports.values() for p in ps]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        any(pid_alive(p) for p in state.pids.values()) or any(port_open(p) for p in ports)
    ):
        time.sleep(0.2)
    assert {n: p for n, p in state.pids.items() if pid_alive(p)} == {}
    assert [p for p in ports if port_open(p)] == []
    assert read_state(data) is None
