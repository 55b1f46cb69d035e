"""Session-wide test fixtures.

The shared fixture corpus (real recorded exchange messages) lives outside the repo;
tests find it through SSMD_FIXTURES (default ../shared/fixtures beside the checkout)
and skip, with the reason shown, where it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def corpus_dir() -> Path:
    return Path(os.environ.get("SSMD_FIXTURES", REPO.parent / "shared" / "fixtures")).resolve()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared fixture corpus; skips the test (visibly) when it is not there."""
    path = corpus_dir()
    if not (path / "README.md").exists():
        pytest.skip(f"fixture corpus not found at {path} (set SSMD_FIXTURES)")
    return path
