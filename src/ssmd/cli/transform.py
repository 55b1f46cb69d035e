"""`ssmd transform test NAME`: run one transform over real-shaped records, before/after.

Records come from a journal recording (through the same `Deriver` live capture uses) or,
by default, from the synthetic `sim` tape generated in-process (no server, no network,
no fixture corpus), so a transform can be tried on a laptop before it is applied.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import typer

from ssmd.cli.env import DirOpt, env_path, load_env
from ssmd.cli.output import JsonOpt, console, fail, print_json
from ssmd.gateway.transforms import TransformError, Transforms
from ssmd.model.codec import to_wire

app = typer.Typer(help="Per-customer Lua transforms (the definition's `transforms`).")

SYNTH_START_NS = 1_700_000_000_000_000_000
"""Fixed start of the synthetic tape, so two runs show the same records."""


def synthetic_records(symbols: Sequence[str], n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Wire-form records of the `sim` tape for `symbols`, derived like live capture."""
    from ssmd.capture.derive import Deriver
    from ssmd.replay.synthetic import SyntheticFeed
    from ssmd.venues import sim

    feed = SyntheticFeed("sim", [sim.venue_symbol(s) for s in symbols], seed=seed,
                         start_ns=SYNTH_START_NS)  # fmt: skip
    session = feed.session("/v2", 0)
    deriver = Deriver("sim", "sim")
    t = SYNTH_START_NS
    out: list[dict[str, Any]] = []

    def feed_line(direction: str, payload: bytes | str, url: str = "") -> None:
        out.extend(to_wire(r) for r in deriver.line(direction, payload, t, url))

    feed_line("open", "")
    feed_line("rest", feed.rest(sim.ASSET_PAIRS_PATH).body, sim.instruments_url())
    for frame in session.greeting():
        feed_line("in", frame)
    for frame in sim.subscribe(["trade", "quote", "book"], list(symbols)):
        feed_line("out", frame)
        for reply in session.on_text(frame.encode()).frames:
            feed_line("in", reply)
    produced = 0
    while True:
        yield from out
        produced += len(out)
        out.clear()
        if produced >= n:
            return
        taken = session.take(256)
        if not taken or not taken[0]:
            return
        for frame in taken[0]:
            t += 1000
            feed_line("in", frame)


def recorded_records(path: Path, venue: str, feed: str) -> Iterator[dict[str, Any]]:
    """Wire-form records of one journal segment (or every segment under a directory)."""
    from ssmd.capture.derive import Deriver
    from ssmd.capture.journal_read import iter_segment

    files = sorted(path.rglob("*.jsonl*")) if path.is_dir() else [path]
    files = [f for f in files if not f.name.endswith(".manifest.json")]
    if not files:
        fail(f"no journal segment under {path}")
    deriver = Deriver(venue, feed)
    for f in files:
        for line in iter_segment(f):
            for record in deriver.line(line.d, line.payload, line.t, line.url):
                yield to_wire(record)


@app.command("test")
def test_cmd(
    name: str = typer.Argument(..., help="Transform name (transforms.NAME)."),
    env_name: str = typer.Option("dev", "--env", help="Environment name or YAML path."),
    sample: int = typer.Option(5, "--sample", min=0, help="Before/after pairs to show."),
    records: int = typer.Option(1000, "--records", min=1, help="Records to run through."),
    recording: Path | None = typer.Option(
        None, "--recording", help="A journal segment (.jsonl.zst) or a directory of them."
    ),
    feed: str = typer.Option("", "--feed", help="Feed of the recording (its venue decodes it)."),
    synthetic: bool = typer.Option(
        False, "--synthetic", help="Use the synthetic sim tape (the default without --recording)."
    ),
    as_json: bool = JsonOpt,
    directory: Path | None = DirOpt,
) -> None:
    """Run transform NAME over recorded (or synthetic) records: before/after, counts."""
    if recording is not None and synthetic:
        fail("--recording and --synthetic exclude each other", 2)
    env = load_env(env_name, directory)
    base = env_path(env_name, directory).parent
    if name not in env.transforms:
        fail(
            f"no transform {name!r} in {env.metadata.name}",
            hint=f"defined: {', '.join(sorted(env.transforms)) or 'none'}",
        )
    try:
        compiled = Transforms.from_spec(env, base).get(name)
    except TransformError as exc:
        fail(str(exc))
    source = _source(env, recording, feed)
    report = run(compiled, source, records, sample)
    if as_json:
        print_json(report)
    else:
        _print(report)
    if report["errors"]:
        raise typer.Exit(1)


def _source(env: Any, recording: Path | None, feed: str) -> Iterator[dict[str, Any]]:
    if recording is not None:
        if not recording.exists():
            fail(f"{recording} does not exist")
        if not feed:
            feeds = list(env.feeds)
            if len(feeds) != 1:
                fail("which feed is this recording of?", 2, "give --feed NAME")
            feed = feeds[0]
        if feed not in env.feeds:
            fail(f"no feed {feed!r} in {env.metadata.name}")
        return recorded_records(recording, env.feeds[feed].venue, feed)
    symbols = ["BTC-USD", "ETH-USD"]
    for spec in env.feeds.values():
        if spec.venue == "sim" and spec.instruments:
            symbols = list(spec.instruments)
            break
    return synthetic_records(symbols, 10**9)


def run(compiled: Any, source: Iterator[dict[str, Any]], limit: int, sample: int) -> dict:
    """Apply `compiled` to up to `limit` records: counts and the first `sample` pairs
    (dropped ones included, `after` null; errors as `error`)."""
    kept = dropped = errors = total = 0
    samples: list[dict[str, Any]] = []
    first_error = ""
    for before in source:
        if total >= limit:
            break
        total += 1
        entry: dict[str, Any] = {"before": before}
        try:
            after = compiled.apply(before)
        except TransformError as exc:
            errors += 1
            first_error = first_error or str(exc)
            entry["error"] = exc.lua_message
        else:
            entry["after"] = after
            if after is None:
                dropped += 1
            else:
                kept += 1
        if len(samples) < sample:
            samples.append(entry)
    return {
        "transform": compiled.name,
        "records": total,
        "kept": kept,
        "dropped": dropped,
        "errors": errors,
        "first_error": first_error,
        "samples": samples,
    }


def _print(report: dict[str, Any]) -> None:
    import orjson

    for i, entry in enumerate(report["samples"], 1):
        console.print(f"[bold]#{i}[/] before: {orjson.dumps(entry['before']).decode()}",
                      highlight=False, soft_wrap=True)  # fmt: skip
        if "error" in entry:
            console.print(f"   [red]error:[/] {entry['error']}", highlight=False, soft_wrap=True)
        elif entry["after"] is None:
            console.print("   after: [yellow](dropped)[/]", highlight=False)
        else:
            console.print(f"   after:  {orjson.dumps(entry['after']).decode()}",
                          highlight=False, soft_wrap=True)  # fmt: skip
    console.print(
        f"{report['transform']}: {report['records']} records, {report['kept']} kept, "
        f"{report['dropped']} dropped, {report['errors']} errors",
        highlight=False,
    )
    if report["first_error"]:
        console.print(f"[red]first error:[/] {report['first_error']}", highlight=False)
