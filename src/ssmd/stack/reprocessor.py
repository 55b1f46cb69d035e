"""Periodic reprocessing under `ssmd up`: a small service, not a scheduler.

Every `--every` seconds it runs `reprocess` (version 1) for each enabled feed over the
last `--lookback` hours up to now. Why a separate process: a reprocess pass holds its
range in memory and takes seconds; inside `ssmd up` it would stall supervision, and a
crash here must not take the stack down (it is restarted with backoff like the rest).
Why re-run recent hours: reprocess is idempotent (same keys, same bytes) and marks an
hour still being written `complete: false`, so queries merge it with the stream; the
pass after the hour ends makes it complete. The scheduled-jobs work replaces this.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from pathlib import Path

from ssmd import spec
from ssmd.model.time import now_ns

HOUR_NS = 3600 * 10**9
log = logging.getLogger("ssmd.reprocessor")


def run_pass(env_file: Path, data_dir: Path, lookback_h: int, now: int | None = None) -> dict:
    """One pass over every enabled feed; returns {feed: records written or error text}."""
    from ssmd.history.reprocess import reprocess
    from ssmd.storage import ObjectStore

    definition = spec.load(env_file)  # re-read: `ssmd env apply` may have changed it
    store = ObjectStore.from_spec(definition.storage, data_dir)
    t1 = now_ns() if now is None else now
    t0 = (t1 // HOUR_NS - lookback_h + 1) * HOUR_NS
    done: dict[str, object] = {}
    for name, feed in definition.feeds.items():
        if not feed.enabled:
            continue
        try:
            report = reprocess(definition, name, t0, t1, data_dir=data_dir, store=store)
            done[name] = sum(report.records.values())
        except Exception as exc:  # one feed failing must not stop the others
            done[name] = f"error: {exc}"
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssmd.stack.reprocessor")
    parser.add_argument("--env", required=True, type=Path, help="Definition file.")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--every", type=float, default=600.0, help="Seconds between passes.")
    parser.add_argument("--lookback", type=int, default=2, help="Hours reprocessed per pass.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        started = time.monotonic()
        log.info("pass: %s (%.2fs)", run_pass(args.env, args.data_dir.resolve(), args.lookback),
                 time.monotonic() - started)  # fmt: skip
        stop.wait(args.every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
