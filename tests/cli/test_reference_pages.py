"""Paged venue reference data (`control.reference.fetch_instruments`): a real HTTP server
answers Kalshi's and Polymarket's documented page shapes (Kalshi: `cursor`, empty or null
after the last page; Polymarket CLOB: `next_cursor`, "LTE=" after the last page)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
from tests.http_stub import Answer, serve

from ssmd import spec
from ssmd.control.reference import fetch_instruments, reference_url

REPO = Path(__file__).resolve().parents[2]
Page = Callable[[dict[str, list[str]]], dict]


@contextmanager
def _venue(page: Page) -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    """(base URL, the query of every request) of a venue answering `page(query)`."""
    seen: list[dict[str, list[str]]] = []

    def answer(path: str) -> Answer:
        query = parse_qs(urlsplit(path).query)
        seen.append(query)
        return 200, {"Content-Type": "application/json"}, json.dumps(page(query)).encode()

    with serve(answer) as base:
        yield base, seen


def _kalshi_pages(query: dict[str, list[str]]) -> dict:
    """Three pages of two markets: K1..K6."""
    n = int(query.get("cursor", ["0"])[0])
    markets = [{"ticker": f"K{n * 2 + i}", "status": "active"} for i in (1, 2)]
    return {"markets": markets, "cursor": str(n + 1) if n < 2 else ""}


def _env(feed: str, instruments: list[str]) -> spec.Environment:
    env = spec.load(REPO / "environments" / "prod.yaml")
    feeds = {**env.feeds, feed: msgspec.structs.replace(env.feeds[feed], instruments=instruments)}
    return msgspec.structs.replace(env, feeds=feeds)


def test_kalshi_every_page_with_all() -> None:
    env = _env("kalshi", [])
    with _venue(_kalshi_pages) as (base, seen):
        parsed, pages = fetch_instruments(
            env, "kalshi", reference_url(env, "kalshi", base), everything=True
        )
    assert [i.venue_symbol for i in parsed] == ["K1", "K2", "K3", "K4", "K5", "K6"]
    assert pages == 3
    assert [q.get("cursor") for q in seen] == [None, ["1"], ["2"]]
    assert all(q["limit"] == ["1000"] for q in seen)  # the first page's query is kept


def test_kalshi_stops_once_the_listed_instruments_are_seen() -> None:
    env = _env("kalshi", ["K3"])
    with _venue(_kalshi_pages) as (base, seen):
        parsed, pages = fetch_instruments(env, "kalshi", reference_url(env, "kalshi", base))
    assert (pages, len(seen), [i.venue_symbol for i in parsed]) == (2, 2, ["K1", "K2", "K3", "K4"])


def test_a_venue_that_never_ends_is_cut() -> None:
    env = _env("kalshi", ["NOT-THERE"])

    def endless(query: dict[str, list[str]]) -> dict:
        return {"markets": [], "cursor": str(int(query.get("cursor", ["0"])[0]) + 1)}

    def stuck(query: dict[str, list[str]]) -> dict:
        return {"markets": [], "cursor": "same"}  # a cursor that never moves

    with _venue(endless) as (base, seen):
        _, pages = fetch_instruments(env, "kalshi", f"{base}/markets", max_pages=5)
    assert pages == 5 == len(seen)
    with _venue(stuck) as (base, seen):
        _, pages = fetch_instruments(env, "kalshi", f"{base}/markets")
    assert pages == 2 == len(seen)


def test_polymarket_follows_next_cursor_to_lte() -> None:
    def page(query: dict[str, list[str]]) -> dict:
        cursor = query.get("next_cursor", ["MA=="])[0]
        n = {"MA==": 0, "MTAw": 1}[cursor]
        market = {
            "condition_id": f"0xc{n}", "question": f"Q{n}", "active": True, "closed": False,
            "minimum_tick_size": 0.01, "minimum_order_size": 5,
            "tokens": [{"token_id": f"{n}1", "outcome": "Yes"},
                       {"token_id": f"{n}2", "outcome": "No"}],
        }  # fmt: skip
        return {"data": [market], "next_cursor": "MTAw" if n == 0 else "LTE=", "count": 1}

    env = _env("polymarket", [])
    with _venue(page) as (base, seen):
        parsed, pages = fetch_instruments(
            env, "polymarket", reference_url(env, "polymarket", base), everything=True
        )
    assert pages == 2 and [q.get("next_cursor") for q in seen] == [None, ["MTAw"]]
    assert sorted(i.venue_symbol for i in parsed) == ["01", "02", "11", "12"]
