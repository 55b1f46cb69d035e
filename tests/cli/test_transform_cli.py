"""`ssmd transform test`: synthetic by default, a recorded journal on request."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ssmd.cli.main import app
from ssmd.cli.transform import synthetic_records

ENV = """\
apiVersion: ssmd/v1
kind: Environment
metadata: {name: dev}
feeds:
  sim:
    venue: sim
    instruments: [BTC-USD, ETH-USD]
transforms:
  mid:
    source: |
      function transform(r)
        if r.type == "book" then return nil end
        if r.type == "quote" then r.mid = dec.div(dec.add(r.bid_px, r.ask_px), 2) end
        return r
      end
  broken:
    source: |
      function transform(r)
        if r.type == "trade" then error("no trades please") end
        return r
      end
"""


def _env(tmp_path: Path) -> Path:
    path = tmp_path / "dev.yaml"
    path.write_text(ENV)
    return path


def test_synthetic_before_after_json(tmp_path: Path) -> None:
    path = _env(tmp_path)
    res = CliRunner().invoke(
        app, ["transform", "test", "mid", "--env", str(path), "--sample", "3", "--json"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["records"] == 1000
    assert report["kept"] + report["dropped"] == 1000 and report["errors"] == 0
    assert report["dropped"] > 0 and report["kept"] > 0
    first = report["samples"][0]
    assert first["before"]["type"] == "quote"
    before, after = first["before"], first["after"]
    from decimal import Decimal

    expected = (Decimal(before["bid_px"]) + Decimal(before["ask_px"])) / 2
    assert Decimal(after["mid"]) == expected and isinstance(after["mid"], str)
    assert list(after)[: len(before)] == list(before)  # input key order kept
    assert any(s["after"] is None for s in report["samples"])  # the book snapshots


def test_errors_are_counted_and_exit_1(tmp_path: Path) -> None:
    path = _env(tmp_path)
    res = CliRunner().invoke(
        app,
        ["transform", "test", "broken", "--env", str(path), "--records", "300", "--json"],
    )
    assert res.exit_code == 1
    report = json.loads(res.stdout)
    assert report["errors"] > 0 and report["kept"] == 300 - report["errors"]
    assert "broken:2: no trades please" in report["first_error"]


def test_table_output_and_unknown_name(tmp_path: Path) -> None:
    path = _env(tmp_path)
    res = CliRunner().invoke(
        app, ["transform", "test", "mid", "--env", str(path), "--sample", "1", "--records", "50"]
    )
    assert res.exit_code == 0
    assert "before:" in res.stdout and "50 records" in res.stdout
    res = CliRunner().invoke(app, ["transform", "test", "nope", "--env", str(path)])
    assert res.exit_code == 1


def test_recording(tmp_path: Path) -> None:
    path = _env(tmp_path)
    seg = _write_recording(tmp_path / "rec")
    res = CliRunner().invoke(
        app,
        ["transform", "test", "mid", "--env", str(path), "--recording", str(seg), "--json"],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["records"] > 0 and report["kept"] > 0


def _write_recording(root: Path) -> Path:
    """A journal of the synthetic session, written with the real journal writer."""
    import zstandard

    from ssmd.replay.synthetic import SyntheticFeed
    from ssmd.venues import sim

    feed = SyntheticFeed("sim", ["BTC/USD"], start_ns=1_700_000_000_000_000_000)
    session = feed.session("/v2", 0)
    t = 1_700_000_000_000_000_000
    lines = [{"t": t, "m": 0, "c": 0, "d": "open", "p": ""}]
    body = feed.rest(sim.ASSET_PAIRS_PATH).body.decode()
    lines.append({"t": t, "m": 0, "c": 0, "d": "rest", "p": body, "u": sim.instruments_url()})
    for frame in sim.subscribe(["trade", "quote"], ["BTC-USD"]):
        lines.append({"t": t, "m": 0, "c": 0, "d": "out", "p": frame})
        for reply in session.on_text(frame.encode()).frames:
            lines.append({"t": t, "m": 0, "c": 0, "d": "in", "p": reply.decode()})
    for frame in session.take(200)[0]:
        t += 1000
        lines.append({"t": t, "m": 0, "c": 0, "d": "in", "p": frame.decode()})
    root.mkdir(parents=True)
    seg = root / f"0-0-{lines[0]['t']}.jsonl.zst"
    text = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines)
    seg.write_bytes(zstandard.ZstdCompressor().compress(text.encode()))
    return seg


def test_synthetic_records_are_deterministic() -> None:
    a = list(_take(synthetic_records(["BTC-USD"], 100), 100))
    b = list(_take(synthetic_records(["BTC-USD"], 100), 100))
    assert a == b and len(a) == 100


def _take(it, n):
    for i, x in enumerate(it):
        if i >= n:
            return
        yield x
