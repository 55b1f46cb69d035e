"""Capture throughput: replay server → one connector process → JetStream acks (not a test).

    .venv/bin/python bench/capture.py [--quick] [--json]

A private nats-server (file storage) and, per step, a replay server subprocess (synthetic
`sim`, frames pre-encoded) feed one connector process (this script in `--worker` mode: a
`Connector` run by `ssmd.cli.connector.run` — uvloop, gc frozen after start-up — as
`ssmd connector` runs it, journal on; `SSMD_BENCH_LOOP=asyncio`: plain asyncio). Steps:

- sustained rate: the replay server offers increasing frame rates; after a 1 s warm-up
  and until the start-up backlog has cleared (every link live, less than a window
  waiting; at most 10 s, `settled_s`) the window starts; a rate is *kept up*
  when the connector received ≥ 97 % of the offered frames in the measured window, no
  connection fell back to journal catch-up, the outbox backlog did not grow, and after
  the stop the stream holds exactly the records an offline derivation of the journal
  yields (`derive_journal`): none lost, no Msg-Id twice. `msgs_per_s` is the acked
  records/s of the highest rate kept up: the ladder, then two bisection steps between its
  last rate kept up and the first not (`--quick`: only 25k and 57k frames/s offered);
- latency: p50/p99 frame read (ts_recv) → JetStream ack of the frame's last record at
  10k frames/s (the connector's optional `AckLatency` probe);
- recovery: at 20k frames/s, nats-server frozen (SIGSTOP) for 10 s (3 s `--quick`): the
  links fall back to the journal while the venue goes on; after SIGCONT, the seconds
  until every link derives live again and the journal lines/s catch-up derived meanwhile
  (on top of the live frames) — none lost, none twice, checked as for every step;
- memory: connector RSS (peak) capturing 1,000 instruments at 5k frames/s;
- per CPU-second: frames the connector handled per second of its own CPU time (on a
  shared box the connector may get a fraction of a core; a lower bound of what a core
  buys, as idle wake-ups at a rate below capacity count too), and `msgs_per_cpu_s`, the
  acked records per connector CPU-second at the highest rate kept up: what one process
  given a core of its own would carry;
- nats-server's CPU share in the same windows (`nats_cpu_share`, and per acked record
  `nats_cpu_us_per_msg`): on this 2-core box the connector, nats-server and the venue
  simulator share two cores, and this says how much of them the broker takes;
- this machine's limits, same run: nats-py core publish (no acks) of the same records,
  a bare picows client counting frames from the replay server flat out, and acked
  JetStream publishes from a client that costs next to nothing (HPUB bytes built
  beforehand: what nats-server itself sustains here, the ceiling of any connector on
  this machine) — each its own process, plain asyncio.

The last line is one JSON object with the figures and the ratios to the limits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

REPO = Path(os.environ.get("SSMD_REPO") or Path(__file__).resolve().parents[1])
STREAM = "MD_DEV_SIM"
SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD"]
HERE = Path(__file__).resolve()
LOOP = os.environ.get("SSMD_BENCH_LOOP", "uvloop")
"""`asyncio` runs the connector under plain asyncio instead (a comparison)."""
RECOVERY_RATE = 20_000
"""Frames/s offered while NATS is frozen and after (the recovery step)."""


def symbols(n: int) -> list[str]:
    return SYMBOLS[:n] if n <= len(SYMBOLS) else [f"S{i:04d}-USD" for i in range(n)]


# -- the connector process ---------------------------------------------------------------


def _proc_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far; 0 without a pid."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def _run_connector(cfg: dict[str, Any]) -> dict[str, Any]:
    from ssmd import spec
    from ssmd.capture.connector import Connector, Options
    from ssmd.capture.metrics import AckLatency

    env = spec.load(REPO / "environments" / "dev.yaml")
    # dev.yaml's channel order (trade, quote, then book, paced): the book's snapshot is
    # the book where the tape stands when it is subscribed (replay/rewind.py)
    feed = msgspec.structs.replace(env.feeds["sim"], instruments=cfg["symbols"])
    env = msgspec.structs.replace(env, feeds={"sim": feed})
    options = Options(
        Path(cfg["data"]), cfg["nats"], ws_url=cfg["ws"], rest_url=cfg["rest"], status_interval=5
    )
    connector = Connector(env, "sim", options=options)
    if cfg["latency"]:
        connector.probe = AckLatency()
    stop = asyncio.Event()
    task = asyncio.create_task(connector.run(stop))

    def counts() -> tuple[int, int, int]:
        outbox = connector.outbox
        frames = sum(link.frames_in for link in connector.links)
        return frames, sum(connector.records.values()), outbox.acked if outbox else 0

    t_start = time.perf_counter()
    while counts()[0] == 0:
        if task.done():
            await task
        if time.perf_counter() - t_start > 60:
            raise RuntimeError("no frames within 60 s")
        await asyncio.sleep(0.02)
    await asyncio.sleep(cfg["warmup"])
    settled = await _settled(connector, SETTLE_S)
    if connector.probe is not None:
        connector.probe.reset()
    f0, r0, a0 = counts()
    cpu0, t0 = time.process_time(), time.perf_counter()
    nats0 = _proc_cpu_s(cfg.get("nats_pid"))
    recovery = await _stall_nats(connector, cfg) if cfg.get("stall") else {}
    pending: list[int] = []
    all_live = True
    while time.perf_counter() - t0 < cfg["seconds"]:
        await asyncio.sleep(0.1)
        assert connector.outbox is not None
        pending.append(connector.outbox.pending)
        if os.environ.get("SSMD_BENCH_TRACE"):
            print(round(time.perf_counter() - t0, 2), counts(), connector.outbox.pending,
                  connector.outbox.publisher.in_flight, connector.outbox.outages,
                  file=sys.stderr)  # fmt: skip
        all_live = all_live and all(link.live for link in connector.links)
    f1, r1, a1 = counts()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    nats_cpu = _proc_cpu_s(cfg.get("nats_pid")) - nats0
    rss_kb = _rss_kb()
    stop.set()
    await asyncio.wait_for(task, 120)
    outbox = connector.outbox
    assert outbox is not None
    half = pending[len(pending) // 2 :] or [0]
    return {
        "frames_per_s": round((f1 - f0) / elapsed),
        "records_per_s": round((r1 - r0) / elapsed),
        "acked_per_s": round((a1 - a0) / elapsed),
        "cpu_share": round(cpu / elapsed, 2),
        "nats_cpu_share": round(nats_cpu / elapsed, 2),
        "frames_per_cpu_s": round((f1 - f0) / cpu) if cpu else 0,
        "all_live": all_live,
        "settled_s": settled,
        "pending_max_2nd_half": max(half),
        "pending_end": pending[-1] if pending else 0,
        "frames": counts()[0],
        "records": counts()[1],
        "acked": outbox.acked,
        "dup_acks": outbox.duplicates,
        "outages": outbox.outages,
        "last_error": str(outbox.publisher.error or ""),
        "unacked_at_exit": outbox.pending,
        "connections": len(connector.links),
        "rss_mb": round(rss_kb / 1024, 1),
        "rss_peak_mb": round(_rss_kb("VmHWM") / 1024, 1),
        "latency": connector.probe.percentiles(50, 99, 99.9) if connector.probe else {},
        "recovery": recovery,
    }


SETTLE_S = 10.0
"""Longest wait after the warm-up for the start-up backlog to clear."""


async def _settled(connector: Any, limit: float) -> float | None:
    """Seconds until every link derives live with less than a window waiting — the
    start-up's backlog (imports, first snapshots, a replay server's schedule that ran on
    meanwhile) cleared, so the window measures the steady state; None: not within
    `limit` (the window starts anyway, and shows it)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        outbox = connector.outbox
        if all(link.live for link in connector.links) and outbox and outbox.pending < 8192:
            return round(time.perf_counter() - t0, 2)
        await asyncio.sleep(0.05)
    return None


async def _stall_nats(connector: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """NATS frozen (SIGSTOP) for `stall` s while the venue goes on: the links fall back to
    the journal; after SIGCONT, how long until every link is live again and how many
    journal lines per second the catch-up derived meanwhile (on top of the live frames)."""
    links = connector.links
    os.kill(cfg["nats_pid"], signal.SIGSTOP)
    try:
        await asyncio.sleep(cfg["stall"])
    finally:
        os.kill(cfg["nats_pid"], signal.SIGCONT)
    resumed, cpu0 = time.perf_counter(), time.process_time()
    frames0, caught0 = sum(ln.frames_in for ln in links), sum(ln.caught_up for ln in links)
    while not all(ln.live for ln in links):
        if time.perf_counter() - resumed > 300:
            raise RuntimeError("not live again within 300 s of the stall")
        await asyncio.sleep(0.01)
    took, cpu = time.perf_counter() - resumed, time.process_time() - cpu0
    caught = sum(ln.caught_up for ln in links) - caught0
    meanwhile = sum(ln.frames_in for ln in links) - frames0
    return {
        "stall_s": cfg["stall"],
        "lagged": sum(ln.lags for ln in links),
        "backlog_at_resume": caught - meanwhile,  # what catch-up derived beyond the new frames
        "live_again_s": round(took, 2),
        "cpu_share": round(cpu / took, 2) if took else 0,
        "catch_up_lines_per_s": round(caught / took) if took else 0,
        "frames_in_meanwhile": meanwhile,
        "outages": connector.outbox.outages,
    }


def worker(cfg: dict[str, Any]) -> None:
    """One connector run; also counts the collector's passes while it runs (not the
    `gc.collect()` of start-up) and their wall time, the longest per generation."""
    import gc

    pauses: list[tuple[int, int]] = []
    started = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter_ns()
        else:
            pauses.append((info["generation"], time.perf_counter_ns() - started[0]))

    async def watched() -> dict[str, Any]:
        gc.callbacks.append(on_gc)
        return await _run_connector(cfg)

    if cfg.get("loop") == "asyncio":  # the comparison: plain asyncio
        got = asyncio.run(watched())
    else:
        from ssmd.cli.connector import run  # what `ssmd connector` runs: uvloop

        got = run(watched())
    took = [ns for _, ns in pauses]
    longest = {g: max((ns for gen, ns in pauses if gen == g), default=0) for g in (0, 1, 2)}
    got["gc"] = {
        "n": len(took),
        "max_ms": round(max(took, default=0) / 1e6, 2),
        "total_ms": round(sum(took) / 1e6, 1),
        "max_ms_by_generation": {g: round(ns / 1e6, 2) for g, ns in longest.items()},
    }
    print(json.dumps(got), flush=True)


# -- limits (each its own process too) ----------------------------------------------------


async def _ws_count(url: str, frames: int, subs: list[str]) -> float:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    class Counter(WSListener):
        n, first = 0, 0.0
        done = asyncio.Event()

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            self.n += 1
            if self.n == 1000:
                self.first = time.perf_counter()
            if self.n >= frames:
                self.done.set()

    transport, client = await ws_connect(Counter, url)
    for s in subs:
        transport.send(WSMsgType.TEXT, s.encode())
    await asyncio.wait_for(client.done.wait(), 300)
    rate = (client.n - 1000) / (time.perf_counter() - client.first)
    transport.disconnect()
    return rate


async def _nats_core(url: str, n: int) -> float:
    import nats

    from ssmd.bus.message import record_message
    from ssmd.model.records import Trade

    base = 1_700_000_000_000_000_000
    msgs = [
        record_message(
            "dev",
            Trade(
                feed="sim",
                venue="sim",
                symbol=SYMBOLS[i % 3],
                ts_event=base + i,
                ts_recv=base + i + 1000,
                price=(50_000 + i % 97) * 10**7,
                size=10**7,
                side="buy",
                trade_id=str(i),
            ),
            "venue",
        )
        for i in range(n)
    ]
    nc = await nats.connect(url)
    t = time.perf_counter()
    for s, p, _ in msgs:
        await nc.publish("bench." + s, p)
    await nc.flush()
    rate = n / (time.perf_counter() - t)
    await nc.close()
    return rate


async def _jetstream_acked(url: str, n: int, window: int = 8192) -> float:
    """Acked JetStream publishes/s from a client that costs next to nothing: HPUB bytes
    built beforehand (Msg-Id per message, a file stream with a 2-minute duplicate window
    as the connector's), a window of 8,192, acks only counted. What nats-server itself
    manages on this machine, the ceiling for any connector here."""
    import nats
    from nats.js.api import StorageType, StreamConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    with contextlib.suppress(Exception):
        await js.delete_stream("BENCH_LIMIT")
    await js.add_stream(StreamConfig(name="BENCH_LIMIT", subjects=["limit.>"],
                                     storage=StorageType.FILE, duplicate_window=120))  # fmt: skip
    await nc.close()
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    await reader.readline()  # INFO
    writer.write(b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n'
                 b"SUB _LIM.* 1\r\nPING\r\n")  # fmt: skip
    while await reader.readline() != b"PONG\r\n":
        pass
    body = b'{"type":"book","feed":"sim","symbol":"BTC-USD","bids":[["50000.1","0.5"]]}'
    msgs = []
    for i in range(n):
        head = b"NATS/1.0\r\nNats-Msg-Id: sim:book:BTC-USD:s%d\r\n\r\n" % i
        msgs.append(b"HPUB limit.book.S%d _LIM.%d %d %d\r\n%s%s\r\n"
                    % (i % 3, i, len(head), len(head) + len(body), head, body))  # fmt: skip
    acked = sent = 0

    async def count_acks() -> None:
        nonlocal acked
        tail = b""  # the last 3 bytes: an ack line cut between two reads still counts once
        while acked < n:
            data = tail + await reader.read(1 << 20)
            acked += data.count(b"MSG ")
            tail = data[-3:]

    t = time.perf_counter()
    reading = asyncio.ensure_future(count_acks())
    while sent < n:
        room = min(window - (sent - acked), 512, n - sent)
        if room > 0:
            writer.write(b"".join(msgs[sent : sent + room]))
            sent += room
        await asyncio.sleep(0)
    await asyncio.wait_for(reading, 120)
    rate = n / (time.perf_counter() - t)
    writer.close()
    return rate


def limit_worker(cfg: dict[str, Any]) -> None:
    if cfg["kind"] == "js":
        rate = asyncio.run(_jetstream_acked(cfg["url"], cfg["n"]))
    elif cfg["kind"] == "ws":
        from ssmd.venues import sim

        subs = sim.subscribe(["book", "trade", "quote"], cfg["symbols"])
        rate = asyncio.run(_ws_count(cfg["url"], cfg["n"], subs))
    else:
        rate = asyncio.run(_nats_core(cfg["url"], cfg["n"]))
    print(json.dumps({"rate": round(rate)}), flush=True)


# -- the driver ---------------------------------------------------------------------------


def _child(mode: str, cfg: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE), mode, json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} failed ({out.returncode}): {out.stderr[-3000:]}")
    return json.loads(lines[-1])


async def _reset_stream(url: str) -> None:
    import nats

    nc = await nats.connect(url)
    with contextlib.suppress(Exception):
        await nc.jetstream().delete_stream(STREAM)
    await nc.close()


async def _stream_ids(url: str) -> tuple[int, list[str]]:
    """(message count, every Nats-Msg-Id) of the stream, read back headers-only."""
    import nats
    from nats.js.api import ConsumerConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    count = (await js.stream_info(STREAM)).state.messages
    ids: list[str] = []
    done = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))
        if len(ids) >= count:
            done.set()

    if count:
        sub = await js.subscribe(
            "md.dev.sim.>",
            stream=STREAM,
            cb=on_msg,
            ordered_consumer=True,
            config=ConsumerConfig(headers_only=True),
            pending_msgs_limit=1_000_000,
        )
        await asyncio.wait_for(done.wait(), 300)
        await sub.unsubscribe()
    await nc.close()
    return count, ids


def _offline_ids(data: Path) -> list[str]:
    from ssmd.bus.msgid import msg_id, seq_scope
    from ssmd.capture.derive import derive_journal

    scope = seq_scope("sim")
    return [msg_id(r, scope) for r in derive_journal(data, "dev", "sim", "sim")]


def step(
    work: Path,
    nats_url: str,
    rate: int,
    *,
    n_symbols: int = 3,
    seconds: float = 4.0,
    warmup: float = 1.0,
    latency: bool = False,
    stall: tuple[int, float] | None = None,
    nats_pid: int | None = None,
) -> dict[str, Any]:
    """One connector run at `rate` frames/s offered; verified against the journal.
    `stall`: (nats-server's pid, seconds) to freeze it for after the warm-up; `nats_pid`:
    nats-server's, to measure its CPU share in the same window."""
    from ssmd.replay.process import ReplayProcess
    from ssmd.stack.ports import free_port

    data = work / f"data-{rate}-{n_symbols}"
    shutil.rmtree(data, ignore_errors=True)
    asyncio.run(_reset_stream(nats_url))
    syms = symbols(n_symbols)
    # 1,000 symbols are generated live: a late book subscribe of 1,000 symbols inside a
    # prebuilt prefix costs the server ~0.5-1 s of rewinds (replay/rewind.py), a stall
    # and a catch-up burst where the measured window starts
    prebuild = int(rate * (seconds + warmup + 5)) if n_symbols <= len(SYMBOLS) else 0
    if stall:
        prebuild = 0  # generated as it goes: the run lasts as long as the recovery
    replay = ReplayProcess(work / f"replay-{rate}-{n_symbols}.log", synthetic="sim",
                           symbols=syms, seed=1, rate=rate, port=free_port(),
                           prebuild=prebuild)  # fmt: skip
    with replay.start(timeout=600):
        cfg = {"symbols": syms, "data": str(data), "nats": nats_url, "ws": replay.url,
               "rest": replay.rest_url, "seconds": seconds, "warmup": warmup,
               "latency": latency, "loop": LOOP}  # fmt: skip
        if nats_pid:
            cfg["nats_pid"] = nats_pid
        if stall:
            cfg |= {"nats_pid": stall[0], "stall": stall[1]}
        got = _child("--worker", cfg)
    count, ids = asyncio.run(_stream_ids(nats_url))
    derived = _offline_ids(data)
    stream_set, derived_set = set(ids), set(derived)
    got |= {
        "offered": rate,
        "stored": count,
        "derived": len(derived),
        "lost": len(derived_set - stream_set),
        "extra": len(stream_set - derived_set),
        "duplicates": len(ids) - len(stream_set),
        "derived_repeats": len(derived) - len(derived_set),
    }
    got["kept_up"] = (
        got["frames_per_s"] >= 0.97 * rate
        and got["all_live"]
        and got["pending_max_2nd_half"] <= 2 * 8192
        and got["lost"] == got["extra"] == got["duplicates"] == 0
        and count == len(derived)
    )
    if not os.environ.get("SSMD_BENCH_KEEP"):
        shutil.rmtree(data, ignore_errors=True)
    return got


def limits(work: Path, nats_url: str, quick: bool) -> dict[str, int]:
    from ssmd.replay.process import ReplayProcess
    from ssmd.stack.ports import free_port

    n = 200_000 if quick else 1_000_000
    replay = ReplayProcess(work / "replay-flat.log", synthetic="sim", symbols=SYMBOLS, seed=1,
                           rate=0, port=free_port(), prebuild=n + 10_000)  # fmt: skip
    with replay.start(timeout=600):
        ws = _child("--limit", {"kind": "ws", "url": replay.url, "n": n, "symbols": SYMBOLS})
    core = _child("--limit", {"kind": "nats", "url": nats_url, "n": n // 2})
    acked = _child("--limit", {"kind": "js", "url": nats_url, "n": n // 2})
    return {"ws_receive_per_s": ws["rate"], "nats_core_publish_per_s": core["rate"],
            "jetstream_acked_per_s": acked["rate"]}  # fmt: skip


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(quick: bool) -> dict[str, Any]:
    from ssmd.stack.nats import NatsServer

    load_start = _load()
    work = Path(tempfile.mkdtemp(prefix="ssmd-bench-capture-"))
    server = NatsServer(work / "nats").start()
    seconds = 2.0 if quick else 5.0
    rates = [int(5_000 * 1.5**i) for i in range(10)]  # 5k … 192k frames/s
    if quick:  # under a minute: two rates of the ladder, 25k and 57k frames/s
        rates = rates[4:7:2]
    try:
        lim = limits(work, server.url, quick)
        log(f"limits: {lim}")
        runs = []
        best: dict[str, Any] | None = None
        for rate in rates:
            got = step(work, server.url, rate, seconds=seconds, nats_pid=server.pid)
            runs.append(got)
            log(f"offered {rate:>7,}/s: {json.dumps(got)}")
            if not got["kept_up"]:
                break
            best = got
        failed = runs[-1]
        for _ in range(0 if quick or best is None or best is failed else BISECTIONS):
            got = step(work, server.url, (best["offered"] + failed["offered"]) // 2,
                       seconds=seconds, nats_pid=server.pid)  # fmt: skip
            runs.append(got)
            log(f"offered {got['offered']:>7,}/s: {json.dumps(got)}")
            if got["kept_up"]:
                best = got
            else:
                failed = got
        lat = step(work, server.url, 10_000, seconds=seconds, latency=True)
        log(f"latency at 10k/s: {json.dumps(lat)}")
        stall = 3.0 if quick else 10.0
        rec = step(work, server.url, RECOVERY_RATE, seconds=seconds, stall=(server.pid, stall))
        log(f"NATS frozen {stall:g} s at {RECOVERY_RATE:,}/s: {json.dumps(rec)}")
        try:
            big = step(work, server.url, 5_000, n_symbols=1000, seconds=seconds)
        except RuntimeError as exc:  # reported, not fatal: the other figures stand
            big = {"rss_peak_mb": None, "kept_up": False, "lost": 0, "duplicates": 0,
                   "error": str(exc)[-300:]}  # fmt: skip
        log(f"1,000 instruments: {json.dumps(big)}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    top = best or runs[0]
    msgs = top["acked_per_s"] if best else 0
    return {
        "bench": "capture",
        "quick": quick,
        "msgs_per_s": msgs,
        "frames_per_s": top["frames_per_s"] if best else 0,
        "offered_per_s": top["offered"] if best else 0,
        "lowest_rate_failed": min((r["offered"] for r in runs if not r["kept_up"]), default=None),
        "lost": sum(r["lost"] for r in [*runs, lat, rec, big]),
        "duplicates": sum(r["duplicates"] for r in [*runs, lat, rec, big]),
        "connector_cpu_share": top["cpu_share"],
        "msgs_per_cpu_s": round(msgs / top["cpu_share"]) if best else 0,
        "nats_cpu_share": top["nats_cpu_share"],
        "nats_cpu_us_per_msg": round(top["nats_cpu_share"] / msgs * 1e6, 2) if best else None,
        "frames_per_cpu_s": max(r["frames_per_cpu_s"] for r in [*runs, lat]),
        "p50_ms": lat["latency"].get("p50_ms"),
        "p99_ms": lat["latency"].get("p99_ms"),
        "p999_ms": lat["latency"].get("p99.9_ms"),
        "latency_gc": lat.get("gc"),
        "loop": LOOP,
        "latency_rate_per_s": lat["acked_per_s"],
        "recovery": {**rec["recovery"], "offered_per_s": RECOVERY_RATE, "lost": rec["lost"]},
        "rss_mb": big["rss_peak_mb"],
        "rss_1000_kept_up": big["kept_up"],
        "rss_1000_error": big.get("error", ""),
        "rss_3_symbols_mb": top["rss_peak_mb"],
        **lim,
        "msgs_vs_nats_core": round(msgs / lim["nats_core_publish_per_s"], 3),
        "msgs_vs_jetstream_acked": round(msgs / lim["jetstream_acked_per_s"], 3),
        "frames_vs_ws_receive": round(
            (top["frames_per_s"] if best else 0) / lim["ws_receive_per_s"], 3
        ),
        "load_avg": {"start": load_start, "end": _load()},
        "runs": [
            {
                k: r[k]
                for k in (
                    "offered",
                    "frames_per_s",
                    "acked_per_s",
                    "kept_up",
                    "cpu_share",
                    "nats_cpu_share",
                    "frames_per_cpu_s",
                    "lost",
                    "duplicates",
                )
            }
            for r in runs
        ],
    }


BISECTIONS = 3
"""Steps between the highest rate of the ladder kept up and the first one not (×1.5
apart): the sustained rate is then known to within ~5 %."""


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "--limit":
        limit_worker(json.loads(sys.argv[2]))
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter steps")
    ap.add_argument("--json", action="store_true", help="print only the final JSON line")
    args = ap.parse_args()
    if args.json:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    result = main(args.quick)
    if not args.json:
        log(json.dumps(result, indent=1))
    print(json.dumps(result))
