"""`ssmd tui`: where it looks for Postgres, NATS and the environment; its help."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ssmd.cli import tui
from ssmd.stack.state import StackState, write_state


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("SSMD_PG_URL", "SSMD_NATS_URL", "SSMD_ENV", "SSMD_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the default data dir is ./data: empty here
    return tmp_path


def cli() -> typer.Typer:
    app = typer.Typer()
    tui.register(app)
    app.command("noop", hidden=True)(lambda: None)  # keep `tui` a named sub-command
    return app


def test_sources_come_from_the_stack_state_unless_given(clean_env: Path) -> None:
    root = clean_env / "d"
    write_state(StackState(env="lab", data_dir=str(root), nats_url="nats://n:1",
                           pg_url="postgresql://p/x"))  # fmt: skip
    assert tui.sources_for(None, None, None, root) == (
        "lab", "postgresql://p/x", "nats://n:1", root.resolve()
    )  # fmt: skip
    assert tui.sources_for("prod", "postgresql://q/y", None, root)[:3] == (
        "prod", "postgresql://q/y", "nats://n:1"
    )  # fmt: skip


def test_nothing_to_connect_to_exits_3_with_a_hint(clean_env: Path) -> None:
    result = CliRunner().invoke(cli(), ["tui"])
    assert result.exit_code != 0
    assert "no Postgres or NATS URL" in str(result.exception)
    assert result.exception.code == 3  # type: ignore[union-attr]


def test_help_names_the_keys() -> None:
    result = CliRunner().invoke(cli(), ["tui", "--help"])
    assert result.exit_code == 0
    for text in ("--env", "--pg-url", "--nats-url", "r revoke", "x quit", "80×24"):
        assert text in result.stdout
