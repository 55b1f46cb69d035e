"""`ssmd audit log|verify` against the real Postgres; exit codes through the real binary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
from tests.meta.helpers import cli

from ssmd.meta import audit, connect

SSMD = str(Path(sys.executable).with_name("ssmd"))


def _seed(pg_url: str, n: int = 3) -> list[audit.AuditEntry]:
    with connect(pg_url) as conn:
        return [
            audit.append(conn, "alice", f"test.{i}", f"thing/{i}", {"n": i}, ts_ns=10**18 + i)
            for i in range(n)
        ]


def _tamper(pg_url: str, row_id: int) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("UPDATE audit_log SET target = 'thing/forged' WHERE id = %s", (row_id,))
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `ssmd` binary; stderr with rich's line wrapping undone."""
    done = subprocess.run(
        [SSMD, *args], capture_output=True, text=True, timeout=60, env=env or dict(os.environ)
    )
    done.stderr = " ".join(done.stderr.split())
    return done


def test_log_json_newest_first_with_limit_and_filter(pg_url: str) -> None:
    entries = _seed(pg_url)
    out = cli("audit", "log", "--json", "--limit", "2", "--pg-url", pg_url)
    assert out.code == 0, out
    docs = json.loads(out.stdout)
    assert [d["id"] for d in docs] == [entries[2].id, entries[1].id]
    assert docs[0] == {
        "id": entries[2].id,
        "ts_ns": 10**18 + 2,
        "actor": "alice",
        "action": "test.2",
        "target": "thing/2",
        "details": {"n": 2},
        "prev_hash": entries[1].hash,
        "hash": entries[2].hash,
    }
    only = json.loads(
        cli("audit", "log", "--json", "--action", "test.0", "--pg-url", pg_url).stdout
    )
    assert [d["target"] for d in only] == ["thing/0"]
    table = cli("audit", "log", "--pg-url", pg_url)
    assert table.code == 0 and "thing/1" in table.stdout


def test_verify_ok(pg_url: str) -> None:
    entries = _seed(pg_url)
    out = cli("audit", "verify", "--json", "--pg-url", pg_url)
    assert out.code == 0, out
    assert json.loads(out.stdout) == {
        "ok": True,
        "rows": 3,
        "head": entries[-1].hash,
        "broken_id": None,
        "reason": "",
    }
    text = cli("audit", "verify", "--pg-url", pg_url)
    assert text.stdout.strip() == f"ok: 3 entries, chain head {entries[-1].hash}"


def test_verify_detects_a_row_changed_behind_its_back(pg_url: str) -> None:
    entries = _seed(pg_url, 4)
    _tamper(pg_url, entries[1].id)
    out = cli("audit", "verify", "--json", "--pg-url", pg_url)
    assert out.code == 1
    doc = json.loads(out.stdout)
    assert (doc["ok"], doc["broken_id"], doc["rows"]) == (False, entries[1].id, 2)
    assert doc["head"] == entries[0].hash
    real = _run("audit", "verify", "--pg-url", pg_url)
    assert real.returncode == 1
    assert f"audit chain broken at row {entries[1].id}" in real.stderr
    assert "changed" in real.stderr


def test_unreachable_postgres_exits_3_naming_it() -> None:
    real = _run("audit", "verify", "--pg-url", "postgresql://ops:hunter2@127.0.0.1:1/ssmd")
    assert real.returncode == 3
    assert "Postgres unreachable at postgresql://ops@127.0.0.1:1/ssmd" in real.stderr
    assert "Connection refused" in real.stderr
    assert "ssmd up" in real.stderr
    assert "hunter2" not in real.stderr + real.stdout
    assert "Traceback" not in real.stderr


def test_no_postgres_configured_exits_3_with_how_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SSMD_PG_URL"}
    env["SSMD_DATA_DIR"] = str(tmp_path)
    real = _run("audit", "log", env=env)
    assert real.returncode == 3
    assert "no Postgres URL" in real.stderr and "ssmd up" in real.stderr
