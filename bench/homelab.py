"""The homelab, measured: `ssmd up` on a fresh data dir as a newcomer runs it.

- time from launching `ssmd up` to the first record streamed over the gateway's
  WebSocket with the admin key it printed (NATS when the gateway has no /v1/stream);
- memory of the whole stack (`ssmd up` and every process under it: NATS, Postgres and
  its backends, replay venue, connector, shipper, reprocessor, gateway): the sum of RSS
  (over-counts pages shared between Postgres processes) and the sum of PSS (shares them
  out: the honest total), idle (the default 200 frames/s) and under load: `--rate` frames/s
  offered to the connector (the sim tape also carries the spare symbols the tour adds,
  which the connector does not subscribe, so `ssmd up --sim-rate` is `rate / share`);
- commands from a fresh clone to data in hand, counted in README.md's marked block;
- the 1-minute load average at the start and the end (the box is shared: figures are
  only comparable at similar load).

Usage: python bench/homelab.py [--quick] [--json] [--rate 10000]
Last line of output: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]


def stack_memory(pid: int) -> dict[str, float]:
    """RSS and PSS (MiB) summed over `pid` and all its descendants, and their count."""
    root = psutil.Process(pid)
    rss = pss = 0
    procs = [root, *root.children(recursive=True)]
    for p in procs:
        try:
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return {"rss_mib": round(rss / 2**20, 1), "pss_mib": round(pss / 2**20, 1),
            "processes": len(procs)}  # fmt: skip


class Stack:
    """`ssmd up` on a fresh data dir; parses the gateway URL and key it prints."""

    def __init__(self, workdir: Path, rate: float | None) -> None:
        envdir = workdir / "environments"
        shutil.copytree(REPO / "environments", envdir)
        self.data = workdir / "data"
        argv = [sys.executable, "-m", "ssmd.cli.main", "up", "--env", "dev", "--dir",
                str(envdir), "--data-dir", str(self.data)]  # fmt: skip
        if rate:
            argv += ["--sim-rate", str(rate)]
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "COLUMNS": "300"},
        )  # fmt: skip
        self.out = ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out += line
            if "stop       Ctrl-C" in line:
                break
        self.up_s = time.monotonic() - self.t0
        key = re.search(r"API key\s+(ssmd_\S+)", self.out)
        gw = re.search(r"gateway\s+(http://\S+)", self.out)
        nats = re.search(r"NATS\s+(nats://\S+)", self.out)
        if not (key and gw and nats):
            self.stop()
            raise SystemExit("ssmd up did not come up:\n" + self.out)
        self.key, self.gateway, self.nats = key.group(1), gw.group(1), nats.group(1)

    def status(self) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, "-m", "ssmd.cli.main", "status", "--json", "--data-dir",
             str(self.data)], capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return json.loads(out.stdout) if out.stdout else {}

    def stop(self) -> None:
        subprocess.run([sys.executable, "-m", "ssmd.cli.main", "down", "--data-dir",
                        str(self.data)], capture_output=True, timeout=120)  # fmt: skip
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def first_record(stack: Stack, timeout: float = 60) -> str:
    """Wait for one record: the WebSocket first, NATS if the route is missing."""
    import websockets

    url = stack.gateway.replace("http://", "ws://") + "/v1/stream"
    try:
        async with websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {stack.key}"}
        ) as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "feed": "sim"}))
            async with asyncio.timeout(timeout):
                while True:
                    for line in str(await ws.recv()).splitlines():
                        if "op" not in json.loads(line):
                            return "websocket"
    except websockets.InvalidStatus:
        pass
    from ssmd.bus.connection import connect

    nc = await connect(stack.nats, name="bench-homelab")
    try:
        sub = await nc.subscribe("md.dev.>")
        await sub.next_msg(timeout)
        return "nats"
    finally:
        await nc.close()


def readme_commands() -> list[str]:
    """The commands in README.md between the clone-to-data markers."""
    text = (REPO / "README.md").read_text()
    found = re.search(r"<!-- clone-to-data -->(.*?)<!-- /clone-to-data -->", text, re.S)
    if not found:
        return []
    lines = [ln.strip() for ln in found.group(1).splitlines()]
    return [ln for ln in lines if ln and not ln.startswith(("#", "```", "<!--"))]


def connector_share() -> float:
    """The connector's share of the sim tape: the replay server also lists the spare
    symbols (stack/services.py) that the dev connector does not subscribe."""
    from ssmd import spec
    from ssmd.stack.services import SIM_SPARE

    mine = spec.load(REPO / "environments" / "dev.yaml").feeds["sim"].instruments
    return len(mine) / len(dict.fromkeys([*mine, *SIM_SPARE]))


def rate_of(status: dict[str, Any]) -> float:
    return sum(
        float(c.get("frames_per_s") or 0)
        for c in status.get("components", [])
        if str(c.get("key", "")).startswith("connector.")
    )


def run(quick: bool, rate: float) -> dict[str, Any]:
    settle = 5 if quick else 15
    result: dict[str, Any] = {"bench": "homelab", "quick": quick}
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ssmd-homelab-") as tmp:
        stack = Stack(Path(tmp) / "idle", None)
        try:
            result["up_to_announce_s"] = round(stack.up_s, 2)
            result["first_record_via"] = asyncio.run(first_record(stack))
            result["up_to_first_record_s"] = round(time.monotonic() - stack.t0, 2)
            time.sleep(settle)
            result["idle"] = stack_memory(stack.proc.pid) | {"frames_per_s": rate_of(
                stack.status())}  # fmt: skip
        finally:
            stack.stop()
        sim_rate = round(rate / connector_share())
        stack = Stack(Path(tmp) / "load", sim_rate)
        try:
            time.sleep(settle + 5)
            result["load"] = stack_memory(stack.proc.pid) | {
                "offered_per_s": rate,
                "sim_rate": sim_rate,
                "frames_per_s": rate_of(stack.status()),
            }
        finally:
            stack.stop()
    result["load_avg"] = {"start": load_start, "end": os.getloadavg()[0]}
    commands = readme_commands()
    result["commands_clone_to_data"] = len(commands)
    result["commands"] = commands
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Shorter settling times.")
    parser.add_argument("--json", action="store_true", help="Only the JSON line.")
    parser.add_argument(
        "--rate", type=float, default=10_000.0, help="Load: frames/s offered to the connector."
    )
    args = parser.parse_args()
    result = run(args.quick, args.rate)
    if not args.json:
        print(f"ssmd up → announced {result['up_to_announce_s']} s, first record "
              f"({result['first_record_via']}) {result['up_to_first_record_s']} s")  # fmt: skip
        for phase in ("idle", "load"):
            m = result[phase]
            print(f"{phase:5} {m['processes']} processes  RSS {m['rss_mib']} MiB  "
                  f"PSS {m['pss_mib']} MiB  connector {m['frames_per_s']} frames/s")  # fmt: skip
        print(f"commands from clone to data: {result['commands_clone_to_data']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
