"""`ssmd streams plan|apply|reconcile` against a real server: outputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import nats
from nats.js.api import StreamConfig
from typer.testing import CliRunner

from ssmd.cli.main import GROUPS
from ssmd.cli.output import CliError
from ssmd.cli.streams import app

from .helpers import run
from .test_provision import ENV_YAML


def ssmd_streams(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, CliError):
        exc = result.exception
        return exc.code, result.stdout, f"{exc}\nhint: {exc.hint}"
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_plan_apply_refuse_reconcile(nats_url: str, tmp_path: Path) -> None:
    assert GROUPS["streams"] == "ssmd.cli.streams"
    path = tmp_path / "qa.yaml"
    path.write_text(ENV_YAML)
    common = ["--env", str(path), "--nats-url", nats_url]

    code, out, _ = ssmd_streams("plan", *common, "--json")
    assert code == 0
    assert [(s["stream"], s["action"]) for s in json.loads(out)["streams"]] == [
        ("MD_QA_BN", "create"),
        ("MD_QA_KRAKEN", "create"),
    ]
    code, out, _ = ssmd_streams("apply", *common)
    assert code == 0
    assert "create   MD_QA_BN  (feed bn)" in out
    code, out, _ = ssmd_streams("apply", *common, "--json")
    assert [s["action"] for s in json.loads(out)["streams"]] == ["ok", "ok"]

    async def shrink() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await js.update_stream(StreamConfig(name="MD_QA_BN", subjects=["md.qa.bn.trade.>"],
                                            max_age=60, max_bytes=2 * 2**30,
                                            duplicate_window=60))  # fmt: skip
        await nc.close()

    run(shrink())
    code, out, err = ssmd_streams("apply", *common)
    assert code == 1
    assert "stream MD_QA_BN (feed bn) disagrees with environment qa" in err
    assert "subjects: found ['md.qa.bn.trade.>'], wanted ['md.qa.bn.>']" in err
    assert "max_age: found 1m, wanted 6h" in err
    assert "duplicate_window: found 1m, wanted 5m" in err
    assert "hint: `ssmd streams reconcile --env qa`" in err
    code, out, _ = ssmd_streams("plan", *common, "--json")
    bn = json.loads(out)["streams"][0]
    assert bn["action"] == "refuse"
    assert [f["field"] for f in bn["fields"]] == ["subjects", "max_age", "duplicate_window"]
    code, out, _ = ssmd_streams("reconcile", *common)
    assert code == 0 and "update   MD_QA_BN" in out
    code, out, _ = ssmd_streams("plan", *common, "--json")
    assert [s["action"] for s in json.loads(out)["streams"]] == ["ok", "ok"]


def test_unreachable_nats_exits_3(tmp_path: Path) -> None:
    path = tmp_path / "qa.yaml"
    path.write_text(ENV_YAML)
    code, _, err = ssmd_streams("plan", "--env", str(path), "--nats-url", "nats://127.0.0.1:1")
    assert code == 3 and "NATS unreachable at nats://127.0.0.1:1" in err
