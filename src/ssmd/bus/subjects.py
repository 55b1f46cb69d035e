"""NATS names (DESIGN.md §6): subjects, streams and KV buckets, from one place."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[.*>\s]+")


def token(text: str) -> str:
    """A subject token: no '.', '*', '>' or whitespace (they would split or wildcard it)."""
    cleaned = _UNSAFE.sub("_", text.strip())
    if not cleaned:
        raise ValueError(f"empty subject token from {text!r}")
    return cleaned


def subject(env: str, feed: str, record_type: str, symbol: str) -> str:
    return f"md.{token(env)}.{token(feed)}.{token(record_type)}.{token(symbol)}"


def stream_name(env: str, feed: str) -> str:
    return f"MD_{token(env).upper()}_{token(feed).upper()}".replace("-", "_")


def spec_bucket(env: str) -> str:
    """KV bucket holding the applied environment definition (components watch it)."""
    return f"ssmd_{token(env)}".replace("-", "_")


def status_bucket(env: str) -> str:
    """KV bucket of component heartbeats (what `ssmd status` and the TUI read)."""
    return f"{spec_bucket(env)}_status"


SPEC_KEY = "spec"
"""The key under which the applied definition (canonical JSON) is stored in the spec bucket."""
IIDS_KEY = "iids"
"""Beside the spec: {feed: {venue symbol: iid}} for the instruments the spec names."""
