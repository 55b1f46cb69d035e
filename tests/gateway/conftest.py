"""Fixtures shared by the gateway's stream tests."""

from __future__ import annotations

import pytest

from .stream_harness import seed


@pytest.fixture
def tokens(pg_url: str) -> dict[str, str]:
    """API keys of the harness's clients, by client id."""
    return seed(pg_url)
