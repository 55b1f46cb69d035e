"""Rendezvous sharding: exact cover, minimal movement, determinism, connection splits."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.capture.shard import assign, parse_shard, place, plan, score, shard_of, split

symbols_st = st.lists(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-/0123456789", min_size=1, max_size=12),
    max_size=200,
    unique=True,
)
UNIVERSE = [f"SYM{i:05d}-USD" for i in range(20_000)]


def test_score_is_a_stable_blake2b_value() -> None:
    # Pinned: a change of hash (or key format) would reshuffle every deployed fleet.
    assert score("kraken", "BTC/USD", 0) == score("kraken", "BTC/USD", 0)
    assert score("kraken", "BTC/USD", 0) != score("kraken", "BTC/USD", 1)
    assert score("kraken", "BTC/USD", 0) != score("binance", "BTC/USD", 0)
    assert score("f", "s", 0) == 0xA4B58B3AF97AE61B
    assert [shard_of(s, 5, feed="kraken") for s in ("BTC/USD", "ETH/USD", "SOL/USD")] == [2, 0, 4]


def test_shard_of_is_stable_across_processes() -> None:
    code = "from ssmd.capture.shard import shard_of; print(shard_of('BTC/USD', 7, feed='k'))"
    out = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert out[0].stdout == out[1].stdout == f"{shard_of('BTC/USD', 7, feed='k')}\n"


@settings(max_examples=60, deadline=None)
@given(symbols=symbols_st, n=st.integers(1, 16), feed=st.sampled_from(["a", "kraken", "b-2"]))
def test_every_symbol_in_exactly_one_shard(symbols: list[str], n: int, feed: str) -> None:
    out = assign(symbols, n, feed=feed)
    assert sorted(out) == list(range(n))
    placed = [s for syms in out.values() for s in syms]
    assert Counter(placed) == Counter(symbols)
    for shard, syms in out.items():
        assert all(shard_of(s, n, feed=feed) == shard for s in syms)
    assert assign(list(reversed(symbols)), n, feed=feed) == {
        k: list(reversed(v)) for k, v in out.items()
    }


@settings(max_examples=60, deadline=None)
@given(symbols=symbols_st, n=st.integers(1, 15))
def test_adding_a_shard_moves_only_to_the_new_shard(symbols: list[str], n: int) -> None:
    for s in symbols:
        before, after = shard_of(s, n, feed="f"), shard_of(s, n + 1, feed="f")
        assert after in (before, n)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16])
def test_adding_a_shard_moves_about_one_over_n_plus_one(n: int) -> None:
    moved = sum(shard_of(s, n, feed="f") != shard_of(s, n + 1, feed="f") for s in UNIVERSE)
    expected = len(UNIVERSE) / (n + 1)
    # binomial: sd = sqrt(N p (1-p)) <= 71 for N = 20k; allow 5 sd
    assert abs(moved - expected) < 5 * 71, (moved, expected)


def test_load_is_balanced() -> None:
    counts = [len(v) for v in assign(UNIVERSE, 8, feed="f").values()]
    assert max(counts) - min(counts) < 0.1 * len(UNIVERSE) / 8, counts


def test_split_balanced_and_bounded() -> None:
    syms = [f"S{i:03d}" for i in range(250)]
    conns = split(list(reversed(syms)), 100)
    assert [len(c) for c in conns] == [84, 83, 83]
    assert [s for c in conns for s in c] == syms
    assert split([], 100) == []
    assert split(["B", "A", "B"], 1) == [["A"], ["B"]]
    with pytest.raises(ValueError):
        split(["A"], 0)


@settings(max_examples=100, deadline=None)
@given(symbols=symbols_st, per=st.integers(1, 50))
def test_split_properties(symbols: list[str], per: int) -> None:
    conns = split(symbols, per)
    assert all(0 < len(c) <= per for c in conns)
    assert len(conns) == -(-len(symbols) // per)
    assert sorted(s for c in conns for s in c) == sorted(symbols)


def test_place_keeps_existing_symbols_where_they_are() -> None:
    conns = [["A", "B"], ["C"]]
    out = place(conns, added=["D", "E", "A"], removed=["B"], per_connection=2)
    assert out == [["A", "D"], ["C", "E"]]
    out = place(out, added=["F"], removed=[], per_connection=2)
    assert out == [["A", "D"], ["C", "E"], ["F"]]
    out = place(out, added=[], removed=["F"], per_connection=2)
    assert out == [["A", "D"], ["C", "E"], []]


@settings(max_examples=100, deadline=None)
@given(start=symbols_st, added=symbols_st, removed_frac=st.floats(0, 1), per=st.integers(1, 20))
def test_place_properties(
    start: list[str], added: list[str], removed_frac: float, per: int
) -> None:
    conns = split(start, per)
    removed = start[: int(len(start) * removed_frac)]
    out = place(conns, added, removed, per)
    assert all(len(c) <= per for c in out)
    flat = [s for c in out for s in c]
    assert len(flat) == len(set(flat))
    assert set(flat) == (set(start) | set(added)) - set(removed)
    for i, c in enumerate(conns):  # nobody that stays moves
        assert [s for s in c if s not in removed] == out[i][
            : len([s for s in c if s not in removed])
        ]


def test_plan_and_parse_shard() -> None:
    p = plan([f"S{i}" for i in range(30)], 3, 4, feed="f")
    assert sorted(p) == [0, 1, 2]
    assert sum(len(c) for conns in p.values() for c in conns) == 30
    assert all(len(c) <= 4 for conns in p.values() for c in conns)
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0", "-1/3", "1/2/3"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    with pytest.raises(ValueError):
        shard_of("A", 0, feed="f")


ENV = """\
apiVersion: ssmd/v1
kind: Environment
metadata:
  name: shardtest
feeds:
  kr:
    venue: kraken-v2
    instruments: [{instruments}]
    shards: 3
    max_instruments_per_connection: 20
"""


def test_cli_shard_plan(tmp_path: Path) -> None:
    syms = [f"X{i}/USD" for i in range(50)]
    path = tmp_path / "shardtest.yaml"
    path.write_text(ENV.format(instruments=", ".join(f"'{s}'" for s in syms)))
    cmd = [sys.executable, "-m", "ssmd.cli.main", "shard", "plan", "--env", str(path)]
    out = subprocess.run([*cmd, "--feed", "kr", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["shards"] == 3 and doc["max_instruments_per_connection"] == 20
    expected = plan(syms, 3, 20, feed="kr")
    assert {a["shard"]: a["connections"] for a in doc["assignment"]} == expected
    out = subprocess.run([*cmd, "--feed", "kr", "--shards", "4", "--json"], capture_output=True)
    assert [a["shard"] for a in json.loads(out.stdout)["assignment"]] == [0, 1, 2, 3]
    table = subprocess.run([*cmd, "--feed", "kr"], capture_output=True, text=True)
    assert table.returncode == 0 and "0/3" in table.stdout
    missing = subprocess.run([*cmd, "--feed", "nope"], capture_output=True, text=True)
    assert missing.returncode == 1 and "no feed 'nope'" in missing.stderr
