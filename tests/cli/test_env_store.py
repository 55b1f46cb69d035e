"""`ssmd env plan|apply|show|history|rollback` against the real Postgres and NATS."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.meta.helpers import cli

from ssmd import spec
from ssmd.bus.connection import connect as connect_bus
from ssmd.bus.kv import read_iids, read_spec
from ssmd.meta import audit, connect, envs
from ssmd.stack.ports import free_port

T = TypeVar("T")


def kv(nats_url: str, read: Callable[[Any], Awaitable[T]]) -> T:
    async def go() -> T:
        nc = await connect_bus(nats_url)
        try:
            return await read(nc)
        finally:
            await nc.close()

    return asyncio.run(go())


def kv_spec(nats_url: str, env: str) -> bytes | None:
    return kv(nats_url, lambda nc: read_spec(nc, env))


def kv_iids(nats_url: str, env: str) -> dict[str, dict[str, int]]:
    return kv(nats_url, lambda nc: read_iids(nc, env))


@pytest.fixture
def unused_port() -> int:
    return free_port()


def run(*args: str, envdir: Path, pg_url: str, nats_url: str | None = None):
    extra = ["--pg-url", pg_url] + (["--nats-url", nats_url] if nats_url else [])
    if args[0] in ("plan", "apply"):  # the commands that read the file
        extra += ["--dir", str(envdir)]
    return cli("env", *args, *extra)


def test_apply_stores_audits_mirrors_clients_and_publishes(
    envdir: Path, pg_url: str, nats_url: str
) -> None:
    out = run(
        "apply", "dev", "--json", "--actor", "ana", envdir=envdir, pg_url=pg_url, nats_url=nats_url
    )
    assert out.code == 0, out
    result = json.loads(out.stdout)
    env = spec.load(envdir / "dev.yaml")
    assert result["env"] == "dev"
    assert result["version"] == 1
    assert result["created"] is True
    assert result["published"] is True
    assert result["sha256"] == spec.spec_sha256(env)
    assert sorted(result["clients"]["added"]) == ["dev-admin", "dev-reader"]
    assert kv_spec(nats_url, "dev") == spec.canonical_json(env)
    with connect(pg_url) as conn:
        actions = [e.action for e in audit.log(conn)]
        assert actions.count("env.version") == 1
        assert actions.count("client.add") == 2
        assert audit.verify(conn).ok


def test_identical_apply_is_a_no_op(envdir: Path, pg_url: str, nats_url: str) -> None:
    first = run("apply", "dev", envdir=envdir, pg_url=pg_url, nats_url=nats_url)
    assert first.code == 0, first
    with connect(pg_url) as conn:
        entries = len(audit.log(conn, limit=1000))
    again = run("apply", "dev", "--json", envdir=envdir, pg_url=pg_url, nats_url=nats_url)
    assert again.code == 0, again
    result = json.loads(again.stdout)
    assert (result["version"], result["created"], result["published"]) == (1, False, False)
    with connect(pg_url) as conn:
        assert len(envs.history(conn, "dev")) == 1
        assert len(audit.log(conn, limit=1000)) == entries


def test_plan_then_apply_then_rollback(envdir: Path, pg_url: str, nats_url: str) -> None:
    assert run("apply", "dev", envdir=envdir, pg_url=pg_url, nats_url=nats_url).code == 0
    v1 = spec.load(envdir / "dev.yaml")
    edited = cli(
        "feed", "disable", "sim", "--env", "dev", "--dir", str(envdir)
    )  # a comment-preserving edit through the CLI
    assert edited.code == 0, edited
    plan = run("plan", "dev", "--json", envdir=envdir, pg_url=pg_url)
    assert plan.code == 0, plan
    changes = json.loads(plan.stdout)["changes"]
    assert changes == [{"op": "changed", "path": "feeds.sim.enabled", "old": True, "new": False}]

    applied = run(
        "apply", "dev", "--json", "-m", "pause sim", envdir=envdir, pg_url=pg_url, nats_url=nats_url
    )
    assert json.loads(applied.stdout)["version"] == 2
    assert kv_spec(nats_url, "dev") == spec.canonical_json(spec.load(envdir / "dev.yaml"))

    history = run("history", "dev", "--json", envdir=envdir, pg_url=pg_url)
    rows = json.loads(history.stdout)
    assert [r["version"] for r in rows] == [2, 1]
    assert rows[0]["message"] == "pause sim"

    back = run(
        "rollback", "dev", "--to", "1", "--json", envdir=envdir, pg_url=pg_url, nats_url=nats_url
    )
    assert back.code == 0, back
    result = json.loads(back.stdout)
    assert (result["version"], result["sha256"]) == (3, spec.spec_sha256(v1))
    assert kv_spec(nats_url, "dev") == spec.canonical_json(v1)

    shown = json.loads(run("show", "dev", "--json", envdir=envdir, pg_url=pg_url).stdout)
    assert shown["version"] == 3
    assert shown["message"] == "rollback to version 1"
    assert spec.from_json(json.dumps(shown["spec"])) == v1
    old = json.loads(
        run("show", "dev", "--version", "2", "--json", envdir=envdir, pg_url=pg_url).stdout
    )
    assert old["spec"]["feeds"]["sim"]["enabled"] is False


def test_show_of_an_unapplied_env_says_how_to_apply(envdir: Path, pg_url: str) -> None:
    out = run("show", "prod", envdir=envdir, pg_url=pg_url)
    assert out.code == 1
    assert "no applied 'prod'" in out.stderr
    assert "ssmd env apply prod" in out.stderr


def test_invalid_definition_is_refused_before_anything_is_stored(
    envdir: Path, pg_url: str, nats_url: str
) -> None:
    path = envdir / "dev.yaml"
    path.write_text(path.read_text().replace("replicas: 1", "replicas: 9"))
    out = run("apply", "dev", envdir=envdir, pg_url=pg_url, nats_url=nats_url)
    assert out.code == 1
    assert "streams.replicas" in out.stderr
    with connect(pg_url) as conn:
        assert envs.history(conn, "dev") == []
    assert kv_spec(nats_url, "dev") is None


def test_unreachable_postgres_exits_3_naming_it(envdir: Path, unused_port: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{unused_port}/postgres"
    out = cli(
        "env",
        "apply",
        "dev",
        "--dir",
        str(envdir),
        "--pg-url",
        url,
        "--nats-url",
        "nats://127.0.0.1:1",
    )
    assert out.code == 3
    assert "Postgres unreachable" in out.stderr
    assert "ssmd up" in out.stderr


def test_unreachable_nats_exits_3_and_a_rerun_publishes(
    envdir: Path, pg_url: str, nats_url: str, unused_port: int
) -> None:
    down = run(
        "apply", "dev", envdir=envdir, pg_url=pg_url, nats_url=f"nats://127.0.0.1:{unused_port}"
    )
    assert down.code == 3
    assert "NATS unreachable" in down.stderr
    assert "version is stored" in down.stderr
    rerun = run("apply", "dev", "--json", envdir=envdir, pg_url=pg_url, nats_url=nats_url)
    result = json.loads(rerun.stdout)
    assert (result["version"], result["created"], result["published"]) == (1, False, True)


def test_concurrent_applies_serialize_into_distinct_versions(
    envdir: Path, pg_url: str, nats_url: str
) -> None:
    """Four processes apply four different definitions at once: four versions, one chain."""
    files = []
    for i in range(4):
        path = envdir / f"dev{i}.yaml"
        text = (envdir / "dev.yaml").read_text().replace("max_age: 1h", f"max_age: {i + 1}h")
        path.write_text(text)
        files.append(path)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ssmd.cli.main",
                "env",
                "apply",
                str(f),
                "--pg-url",
                pg_url,
                "--nats-url",
                nats_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    outcomes = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outcomes
    with connect(pg_url) as conn:
        versions = envs.history(conn, "dev")
        assert sorted(v.version for v in versions) == [1, 2, 3, 4]
        assert len({v.sha256 for v in versions}) == 4
        assert audit.verify(conn).ok
    published = spec.from_json(kv_spec(nats_url, "dev") or b"")
    assert spec.spec_sha256(published) == versions[0].sha256


def test_apply_gives_listed_instruments_stable_iids_in_kv(
    envdir: Path, pg_url: str, nats_url: str
) -> None:
    assert run("apply", "dev", envdir=envdir, pg_url=pg_url, nats_url=nats_url).code == 0
    first = kv_iids(nats_url, "dev")
    with connect(pg_url) as conn:
        rows = dict(conn.execute("SELECT venue_symbol, iid FROM instruments WHERE venue = 'sim'"))
    # the secmaster keys by the venue's symbol (sim's wire says BTC/USD), KV by the name
    # the definition and the connector use
    assert sorted(rows) == ["BTC/USD", "ETH/USD", "SOL/USD"] and len(set(rows.values())) == 3
    assert first == {"sim": {k.replace("/", "-"): v for k, v in rows.items()}}
    rows = first["sim"]
    added = cli("feed", "add-instrument", "sim", "ADA-USD", "--env", "dev", "--dir", str(envdir))
    assert added.code == 0, added
    assert run("apply", "dev", envdir=envdir, pg_url=pg_url, nats_url=nats_url).code == 0
    second = kv_iids(nats_url, "dev")["sim"]
    assert {k: second[k] for k in rows} == rows  # an iid never changes
    assert second["ADA-USD"] not in rows.values()
