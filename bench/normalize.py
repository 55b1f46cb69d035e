"""Normalize throughput per core on each recording, against cryptofeed and bare decode.

    .venv/bin/python bench/normalize.py [--quick] [--json]

For every fixture recording with a venue module: frames/s through our normalizer (books
and checksums on; for Kraken v1 also with its C book path switched off, `python`),
frames/s of bare `msgspec.json.decode` on the same frames, and — in a
throwaway venv under /tmp — cryptofeed's own message handlers on the same frames. If
cryptofeed cannot be installed or run, the output says why instead of failing.
It also runs the connector's per-record path on a synthetic `sim` tape (Kraken v2 wire,
what `environments/dev.yaml` captures): normalize per frame, then `codec.encode` and
`msg_id` per record. The last line is one JSON object with the figures and ratios.

Rates are frames per second of process CPU time (`time.process_time`), best of the
repeats, for all three: the box is shared, and wall time mostly measured the wait
for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zlib import crc32

import msgspec

from ssmd.bus.msgid import msg_id, seq_scope
from ssmd.capture.derive import Deriver
from ssmd.cli.venue import load_recording, venue_normalizer
from ssmd.model import codec
from ssmd.model.records import Book
from ssmd.replay.synth import KrakenTape
from ssmd.venues import kraken_v1
from ssmd.venues.recording import guess_venue

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("SSMD_FIXTURES", REPO.parent / "shared" / "fixtures"))
RECORDINGS = ("KRAKEN.ws.50.0", "KRAKEN.ws.48.0", "KRAKEN.ws.49.0", "BINANCE.ws.1.0",
              "COINBASE.ws.28.0")  # fmt: skip
CF_VENV = Path("/tmp/ssmd-bench-cryptofeed")
CF_FEEDS = {"KRAKEN": "Kraken", "BINANCE": "Binance", "COINBASE": "Coinbase"}


def _best(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


@contextmanager
def pure_python() -> Iterator[None]:
    """The reference path: Kraken v1's C book path switched off (the only native one)."""
    saved, kraken_v1._native_book = kraken_v1._native_book, None
    try:
        yield
    finally:
        kraken_v1._native_book = saved


def ours(name: str, repeat: int) -> dict:
    path = CORPUS / "recordings" / name
    venue = guess_venue(name)
    frames, _ = load_recording(path)
    rest = [f for f in frames if f.direction == "rest"]
    data = [(f.payload.encode(), f.ts_recv) for f in frames if f.direction == "in"]

    def run() -> float:
        n = venue_normalizer(venue)  # type: ignore[arg-type]
        for f in rest[:1]:  # instrument list only: snapshots are interleaved below
            n.on_rest(f.endpoint, f.payload, f.ts_recv)
        seq = sorted(
            [(ts, 0, p, "") for p, ts in data]
            + [(f.ts_recv, 1, f.payload, f.endpoint) for f in rest[1:]]
        )
        on_frame, on_rest = n.on_frame, n.on_rest
        t = time.process_time()
        for ts, is_rest, p, ep in seq:
            if is_rest:
                on_rest(ep, p, ts)
            else:
                on_frame(p, ts)
        return time.process_time() - t

    def decode() -> float:
        d = msgspec.json.decode
        t = time.process_time()
        for p, _ in data:
            d(p)
        return time.process_time() - t

    out = {"venue": venue, "frames": len(data), "ours": len(data) / _best(run, repeat),
           "decode": len(data) / _best(decode, repeat)}  # fmt: skip
    if venue == "kraken-v1" and kraken_v1.NATIVE:
        with pure_python():
            out["python"] = len(data) / _best(run, repeat)
    return out


def kraken_floor(name: str, repeat: int) -> dict:
    """CPU µs per Kraken v1 book update of the least any pure-Python normalizer must do:
    decode, int() of price, quantity and timestamp, one dict store, one CRC32 of a
    200-byte top-10 string compared to the venue's, one `Book` record. No book order,
    no top-10 upkeep. The bound quoted in RESULTS.md; bare decode per frame beside it."""
    frames, _ = load_recording(CORPUS / "recordings" / name)
    data = [f for f in frames if f.direction == "in" and f.payload.startswith("[")]
    upd = [(f.payload.encode(), f.ts_recv) for f in data if '"as"' not in f.payload]
    dec, text = msgspec.json.Decoder().decode, b"x" * 200

    def floor() -> float:
        levels: dict[int, int] = {}
        t = time.process_time()
        for p, ts in upd:
            body = dec(p)[1]
            row = (body.get("a") or body.get("b"))[0]
            px, sz = int(row[0].replace(".", "", 1)), int(row[1].replace(".", "", 1))
            levels[px] = sz
            ts_event = int(row[2].replace(".", "", 1)) * 1000
            _ = crc32(text) == int(body.get("c", "0"))
            Book(venue="kraken", symbol="X", ts_event=ts_event, ts_recv=ts, snapshot=False,
                 bids=[(px, sz)], asks=[])  # fmt: skip
        return time.process_time() - t

    def decode() -> float:
        t = time.process_time()
        for p, _ in upd:
            dec(p)
        return time.process_time() - t

    return {"updates": len(upd), "floor_us": round(_best(floor, repeat) / len(upd) * 1e6, 2),
            "decode_us": round(_best(decode, repeat) / len(upd) * 1e6, 2)}  # fmt: skip


SIM_SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD")


def sim_path(frames: int, repeat: int) -> dict:
    """The connector's per-record CPU cost on a seeded `sim` tape (book depth 10): µs per
    frame through `Deriver.line` (normalize), µs per record of `codec.encode` and of
    `msg_id`, and the frames/s and records/s of the three together on one core."""
    tape = KrakenTape(SIM_SYMBOLS, seed=1, depth=10, start_ns=1_700_000_000_000_000_000)
    t0 = tape.start_ns
    head = [tape.instrument_snapshot()]
    head += [f for i in range(len(SIM_SYMBOLS)) for f in (tape.book_snapshot(i),
             tape.ticker(i, "snapshot"))]  # fmt: skip
    body = tape.take(frames)[0]
    scope = seq_scope("sim")
    best = {"normalize": 1.0, "encode": 1.0, "msg_id": 1.0}
    records: list = []
    for _ in range(repeat):
        d = Deriver("sim", "sim")
        d.line("rest", tape.asset_pairs(), t0, "http://sim/0/public/AssetPairs")
        for f in head:
            d.line("in", f, t0)
        line, records = d.line, []
        t = time.process_time()
        for k, f in enumerate(body):
            records += line("in", f, t0 + k)
        best["normalize"] = min(best["normalize"], (time.process_time() - t) / len(body))
        enc = codec.encode
        t = time.process_time()
        for r in records:
            enc(r)
        best["encode"] = min(best["encode"], (time.process_time() - t) / len(records))
        t = time.process_time()
        for r in records:
            msg_id(r, scope)
        best["msg_id"] = min(best["msg_id"], (time.process_time() - t) / len(records))
    per_frame = best["normalize"] + (best["encode"] + best["msg_id"]) * len(records) / len(body)
    return {"frames": len(body), "records": len(records),
            "normalize_us": round(best["normalize"] * 1e6, 2),
            "encode_us": round(best["encode"] * 1e6, 2),
            "msg_id_us": round(best["msg_id"] * 1e6, 2),
            "frames_per_s": round(1 / per_frame),
            "records_per_s": round(len(records) / len(body) / per_frame)}  # fmt: skip


CF_SCRIPT = textwrap.dedent(
    r"""
    import asyncio, json, sys, time
    from decimal import Decimal
    from cryptofeed.defines import L2_BOOK, TRADES, TICKER
    from cryptofeed.symbols import Symbols
    import cryptofeed.exchanges as ex
    path, rest0, feedname = sys.argv[1:4]
    checksum, repeat = sys.argv[4] == "1", int(sys.argv[5])
    cls = getattr(ex, feedname)
    line = open(rest0).readline()
    body = json.loads(line.split(": ", 1)[1], parse_float=Decimal)
    Symbols.set(cls.id, *cls._parse_symbol_data(body))
    frames = []
    for line in open(path):
        if line.strip() and not line.startswith("wss"):
            ts, _, p = line.rstrip("\n").partition(": ")
            frames.append((p, float(ts)))
    cfg = [l for l in open(rest0) if l.startswith("configuration: ")][0]
    cfg = json.loads(cfg.split(": ", 1)[1])
    class Conn:
        uuid = "bench"
    async def noop(*a, **k):
        pass
    async def main():
        best = None
        for _ in range(repeat):
            kw = {"checksum_validation": checksum} if feedname == "Kraken" else {}
            chans = {"l2_book": L2_BOOK, "trades": TRADES, "ticker": TICKER}
            subs = {chans[k]: v for k, v in cfg.items() if k in chans}
            f = cls(subscription=subs, callbacks={c: noop for c in subs}, **kw)
            conn = Conn()
            t = time.process_time()
            for p, ts in frames:
                await f.message_handler(p, conn, ts)
            dt = time.process_time() - t
            best = dt if best is None else min(best, dt)
        print(json.dumps({"frames": len(frames), "rate": len(frames) / best}))
    asyncio.run(main())
    """
)


def cryptofeed(name: str, repeat: int, checksum: bool) -> dict:
    py = CF_VENV / "bin" / "python"
    if not py.exists():
        proc = subprocess.run([sys.executable, "-m", "venv", str(CF_VENV)], capture_output=True)
        proc = subprocess.run([str(CF_VENV / "bin/pip"), "install", "-q", "cryptofeed>=2.4"],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode:
            return {"error": f"cannot install cryptofeed: {proc.stderr.strip()[-300:]}"}
    feed = name.split(".")[0]
    script = CF_VENV / "bench_cf.py"
    script.write_text(CF_SCRIPT)
    args = [str(py), str(script), str(CORPUS / "recordings" / name),
            str(CORPUS / "recordings" / f"{feed}.0"), CF_FEEDS[feed], "1" if checksum else "0",
            str(repeat)]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        return {"error": f"cryptofeed run failed: {proc.stderr.strip()[-300:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(name: str, repeat: int, rounds: int, cf_off: bool) -> dict:
    """One recording: `rounds` rounds of (ours, decode, cryptofeed), each best of `repeat`.

    The box is shared, so the load drifts between the three measurements; rounds
    interleave them, the figures are the best of all rounds and `ratio_range` gives
    the spread of the per-round ratios."""
    has_cf = name.split(".")[0] in CF_FEEDS
    best: dict = {}
    per_round: list[tuple[float, float | None]] = []
    for _ in range(rounds):
        r = ours(name, repeat)
        cf_on = cryptofeed(name, repeat, True) if has_cf else {}
        for k in ("ours", "decode", "python"):
            if k in r:
                best[k] = max(best.get(k, 0.0), r[k])
        best["venue"], best["frames"] = r["venue"], r["frames"]
        if cf_on.get("rate"):
            best["cryptofeed"] = max(best.get("cryptofeed", 0.0), cf_on["rate"])
        if "error" in cf_on:
            best["cryptofeed_error"] = cf_on["error"]
        per_round.append(
            (r["ours"] / r["decode"], r["ours"] / cf_on["rate"] if cf_on.get("rate") else None)
        )
    out = {"venue": best["venue"], "frames": best["frames"], "ours": best["ours"],
           "python": best.get("python"), "decode": best["decode"],
           "cryptofeed": best.get("cryptofeed")}  # fmt: skip
    if "cryptofeed_error" in best:
        out["cryptofeed_error"] = best["cryptofeed_error"]
    if cf_off:
        out["cryptofeed_no_checksum"] = cryptofeed(name, repeat, False).get("rate")
    out["vs_cryptofeed"] = round(out["ours"] / out["cryptofeed"], 2) if out["cryptofeed"] else None
    out["vs_decode"] = round(out["ours"] / out["decode"], 3)
    cf_ratios = [c for _, c in per_round if c]
    out["ratio_range"] = {
        "vs_decode": [
            round(min(d for d, _ in per_round), 3),
            round(max(d for d, _ in per_round), 3),
        ],
        "vs_cryptofeed": [round(min(cf_ratios), 2), round(max(cf_ratios), 2)]
        if cf_ratios
        else None,
    }
    out["native_speedup"] = round(out["ours"] / out["python"], 2) if out["python"] else None
    for k in ("ours", "python", "decode", "cryptofeed", "cryptofeed_no_checksum"):
        if out.get(k):
            out[k] = round(out[k])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, Kraken book only")
    ap.add_argument("--json", action="store_true", help="only the final JSON line")
    ap.add_argument(
        "--rounds", type=int, default=0, help="interleaved rounds (default: Kraken book 3, else 1)"
    )
    args = ap.parse_args()
    repeat = 2 if args.quick else 7
    names = RECORDINGS[:1] if args.quick else RECORDINGS
    results = {}
    for name in names:
        rounds = args.rounds or (3 if name == RECORDINGS[0] and not args.quick else 1)
        r = measure(name, repeat, rounds, name.startswith("KRAKEN") and not args.quick)
        if name == RECORDINGS[0]:
            r["update_floor"] = kraken_floor(name, repeat)
        results[name] = r
        if not args.json:
            print(f"{name:18} {r['venue']:18} frames {r['frames']:6}  ours {r['ours']:>9,}/s  "
                  f"decode {r['decode']:>10,}/s ({r['vs_decode']:.0%})  cryptofeed "
                  f"{r['cryptofeed'] or 'n/a'} (x{r['vs_cryptofeed']})  pure Python "
                  f"{r['python'] or 'n/a'}  rounds {rounds}, "
                  f"ratio ranges {r['ratio_range']}"
                  + (f"  [{r['cryptofeed_error'][-120:]}]" if "cryptofeed_error" in r
                     else ""))  # fmt: skip
            if "update_floor" in r:
                print(f"{'':18} pure-Python floor per book update {r['update_floor']}")
    sim = sim_path(20_000 if args.quick else 50_000, repeat)
    if not args.json:
        print(f"{'sim tape':18} connector path per core {sim}")
    summary = {"python": sys.version.split()[0], "quick": args.quick, "recordings": results,
               "sim": sim, "loadavg": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
