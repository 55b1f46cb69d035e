"""`ssmd up`, `ssmd down`, `ssmd status`: the local stack on one machine.

`up` validates the definition before starting anything, starts embedded NATS (with
JetStream) and Postgres from wheels under one data directory, applies the definition,
starts ssmd's services (replay venue, connectors, shipper, reprocessor, gateway), shows
an admin API key once (first start), says where everything is, and runs in the
foreground until Ctrl-C or `ssmd down`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from ssmd.bus.connection import BusUnreachable
from ssmd.cli.env import DirOpt, env_path, load_env
from ssmd.cli.output import UNREACHABLE, CliError, JsonOpt, console, print_json, print_table
from ssmd.control.apply import apply
from ssmd.control.reference import (
    ReferenceUnavailable,
    fetch_instruments,
    reference_url,
    sync_feed,
)
from ssmd.meta import MetaUnreachable, connect
from ssmd.spec import Environment
from ssmd.stack.admin_key import AdminKey, ensure_admin_key
from ssmd.stack.health import stack_status
from ssmd.stack.local import LocalStack, StackAlreadyRunning, stop_stack
from ssmd.stack.ports import port_open
from ssmd.stack.process import ServerStartError
from ssmd.stack.services import REPROCESS_EVERY_S, SIM_RATE, Services
from ssmd.stack.state import StackState, default_data_dir, read_state, write_state

DataDirOpt = typer.Option(
    None,
    "--data-dir",
    envvar="SSMD_DATA_DIR",
    help="Where all state lives [default: $SSMD_DATA_DIR, else the definition's "
    "storage.data_dir, else ./data].",
    show_default=False,
)


def _announce(
    state: StackState, version: int, env: str, services: Services, key: AdminKey | None
) -> None:
    say = console.print
    say(f"[bold green]ssmd is up[/] — environment [bold]{env}[/] version {version}")
    say(f"  data dir   {state.data_dir}")
    say(f"  NATS       {state.nats_url}  (JetStream, KV ssmd_{env})")
    say(f"  Postgres   {state.pg_url}")
    if state.s3_url:
        say(f"  S3         {state.s3_url}  (embedded moto)")
    say(f"  gateway    {services.gateway_url}  (REST /v1, WebSocket /v1/stream, /docs)")
    for feed, replay in services.replays.items():
        say(f"  venue      {replay.url}  (synthetic sim for feed {feed})")
    for name in services.services:
        say(f"  service    {name}  (log: {state.data_dir}/logs/{name}.log)", soft_wrap=True)
    if key is None:
        say("  API key    no client with the admin scope in the definition")
    elif key.token:
        say(f"  API key    {key.token}", soft_wrap=True)
        say(f"             client {key.client_id}; shown once (only its hash is stored)")
        say(f"  client     export SSMD_URL={services.gateway_url} SSMD_API_KEY={key.token}",
            soft_wrap=True)  # fmt: skip
    else:
        say(f"  API key    {key.client_id} has one already (shown at first start); a new one:")
        say(f"             ssmd key create --client {key.client_id} --env {env}")
    if Path(state.data_dir) != default_data_dir():
        say(f"  [dim]other shells: export SSMD_DATA_DIR={state.data_dir}[/]", soft_wrap=True)
    say(f"  try        ssmd env show {env} --json   ·   ssmd status")
    say("  stop       Ctrl-C here, or `ssmd down` from another shell")


def _wait_gateway(services: Services, timeout: float = 45.0) -> bool:
    """Wait until the gateway listens, so what `up` prints works when it is printed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(services.gateway_port):
            return True
        services.supervise()
        time.sleep(0.1)
    return False


def _load_reference(env: Environment, pg_url: str, services: Services) -> None:
    """The listed instruments' reference data into the secmaster once at start (tick and
    lot sizes for `ssmd instrument list`, the TUI and agents); a venue that cannot be
    reached only warns — capture does not depend on it."""
    for name, feed in env.feeds.items():
        if not (feed.enabled and feed.instruments):
            continue
        replay = services.replays.get(name)
        url = reference_url(env, name, replay.rest_url if replay else None)
        try:
            parsed, pages = fetch_instruments(env, name, url, timeout=5.0)
            with connect(pg_url) as conn:
                sync_feed(conn, env, name, parsed, url, "ssmd-up", pages=pages)
        except (ReferenceUnavailable, ValueError) as exc:
            console.print(f"[yellow]reference data of feed {name} not loaded[/]: {exc} "
                          f"(later: ssmd instrument sync {name})", soft_wrap=True)  # fmt: skip


def up(
    env: str = typer.Option("dev", "--env", "-e", help="Environment name or .yaml path."),
    data_dir: Path | None = DataDirOpt,
    sim_rate: float = typer.Option(
        SIM_RATE, "--sim-rate", envvar="SSMD_SIM_RATE",
        help="Frames/s of the synthetic sim venue (raise it for load tests).",
    ),
    reprocess_every: float = typer.Option(
        REPROCESS_EVERY_S, "--reprocess-every", envvar="SSMD_REPROCESS_EVERY",
        help="Seconds between reprocess passes over the last 2 hours (0 = off).",
    ),
    gateway_port: int = typer.Option(
        0, "--gateway-port", envvar="SSMD_GATEWAY_PORT", help="Gateway port (0 = a free one)."
    ),
    directory: Path = DirOpt,
) -> None:  # fmt: skip
    """Start the local stack on an environment definition and run until stopped."""
    spec_env = load_env(env, directory)
    env_file = env_path(env, directory)
    root = (data_dir or Path(spec_env.storage.data_dir)).resolve()
    name = spec_env.metadata.name
    try:
        with LocalStack(root, name) as stack:
            state = stack.state
            assert state is not None
            try:
                with connect(state.pg_url) as conn:
                    applied = apply(conn, state.nats_url, spec_env, "ssmd-up", "ssmd up")
                with connect(state.pg_url) as conn:
                    key = ensure_admin_key(conn, spec_env)
            except (MetaUnreachable, BusUnreachable) as exc:
                raise CliError(
                    f"the stack started but is not answering: {exc}", UNREACHABLE
                ) from None
            services = Services(
                spec_env, env_file, root, state.nats_url, state.pg_url,
                sim_rate=sim_rate, reprocess_every=reprocess_every,
                gateway_port=gateway_port or None,
            )  # fmt: skip
            try:
                services.start()
                _load_reference(spec_env, state.pg_url, services)
                state.pids.update(services.pids())
                state.ports["gateway"] = [services.gateway_port]
                state.gateway_url = services.gateway_url
                write_state(state)
                if not _wait_gateway(services):
                    console.print(f"[yellow]the gateway is not answering yet[/]: see "
                                  f"{root}/logs/gateway.log")  # fmt: skip
                _announce(state, applied.version, name, services, key)

                def supervise() -> None:
                    if services.supervise():
                        state.pids.update(services.pids())
                        write_state(state)

                why = stack.wait(tick=supervise)
                console.print(f"stopping ({why}) …")
            finally:
                services.stop()
    except StackAlreadyRunning as exc:
        raise CliError(str(exc), UNREACHABLE) from None
    except ServerStartError as exc:
        raise CliError(f"{exc}\n{exc.log_tail}", UNREACHABLE, f"logs are in {root}/logs") from None
    except KeyboardInterrupt:
        pass
    console.print("stopped; nothing left running")


def down(data_dir: Path | None = DataDirOpt) -> None:
    """Stop the local stack running from this data directory (idempotent)."""
    root = (data_dir or default_data_dir()).resolve()
    state = read_state(root)
    if state is None:
        console.print(f"no stack running in {root}")
        return
    try:
        stopped = stop_stack(state)
    except RuntimeError as exc:
        raise CliError(str(exc), UNREACHABLE) from None
    console.print(f"stopped {', '.join(stopped) or 'nothing (it had already exited)'}")


def status(data_dir: Path | None = DataDirOpt, as_json: bool = JsonOpt) -> None:
    """The local stack at a glance: processes, each component's rates, a connector's CPU
    share (with "cpu-bound": its core is full, add a shard; "nats-bound": acks are slow),
    lag and last gap (from the heartbeats in KV ssmd_{env}_status), the applied version,
    storage used."""
    root = (data_dir or default_data_dir()).resolve()
    state = read_state(root)
    if state is None:
        raise CliError(f"no stack running in {root}", UNREACHABLE, "start one with `ssmd up`")
    result = stack_status(state, root)
    processes = result["processes"]
    if as_json:
        print_json(result)
    else:
        _print_status(result)
    if not all(p["running"] for p in processes.values()):
        raise typer.Exit(UNREACHABLE)


def _print_status(result: dict[str, Any]) -> None:
    print_table(
        f"ssmd {result['env']} in {result['data_dir']}",
        ["process", "pid", "state"],
        [[n, p["pid"], "up" if p["running"] else "DOWN"] for n, p in result["processes"].items()],
    )
    rows = []
    for c in result["components"]:
        gap = c.get("last_gap") or {}
        rows.append(
            [
                c.get("key"),
                "STALE" if c.get("stale") else "ok",
                c.get("frames_per_s", ""),
                c.get("records_per_s", ""),
                _cpu(c),
                c.get("pending", ""),
                f"{gap.get('reason', '')} {gap.get('symbol', '')}".strip(),
            ]
        )
    print_table(
        "components",
        ["component", "health", "frames/s", "records/s", "cpu", "lag", "last gap"],
        rows,
    )
    storage = result["storage"]
    applied = result["applied"]
    shown = (
        f"version {applied['version']} ({str(applied['sha256'])[:12]})"
        if "version" in applied
        else applied.get("error", "nothing yet")
    )
    console.print(f"gateway: {result['gateway_url'] or '-'}   applied: {shown}")
    console.print(
        f"storage: journal {storage['journal_bytes']:,} B · objects "
        f"{storage['objects_bytes']:,} B · postgres {storage['postgres_bytes']:,} B"
    )


def _cpu(component: dict[str, Any]) -> str:
    """A connector's share of its core, with what bounds it ("0.95 cpu-bound")."""
    if "cpu" not in component:
        return ""
    bound = component.get("bottleneck")
    return f"{component['cpu']:.2f}" + (f" {bound}-bound" if bound else "")


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)


__all__ = ["down", "register", "status", "up"]
