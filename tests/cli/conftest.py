"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def envdir(tmp_path: Path) -> Path:
    """A private copy of the example definitions (tests edit them)."""
    target = tmp_path / "environments"
    shutil.copytree(REPO / "environments", target)
    return target
