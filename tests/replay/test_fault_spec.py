"""The --faults grammar: good specs parse to what they say, bad ones name the token."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.replay.faults import KINDS, Fault, FaultSpec, FaultSpecError, corrupt_checksum


def test_example_spec_from_the_docs() -> None:
    spec = FaultSpec.parse(
        "disconnect@1000,drop@0.01,dup@0.01,reorder@0.01,corrupt-checksum@500,stall@2000:5s"
    )
    assert spec.faults == (
        Fault("disconnect", index=1000),
        Fault("drop", probability=0.01),
        Fault("dup", probability=0.01),
        Fault("reorder", probability=0.01),
        Fault("corrupt-checksum", index=500),
        Fault("stall", index=2000, seconds=5.0),
    )


def test_durations_connection_selector_and_whitespace() -> None:
    spec = FaultSpec.parse(" stall@10:250ms#2 , kill@5#1 ")
    assert spec.faults == (
        Fault("stall", index=10, seconds=0.25, connection=2),
        Fault("kill", index=5, connection=1),
    )
    assert not FaultSpec.parse("") and not FaultSpec.parse("   ")
    plan = spec.for_connection(1, seed=0)
    assert [f.kind for f in plan.faults] == ["kill"]


@pytest.mark.parametrize(
    ("spec", "token", "why"),
    [
        ("explode@3", "explode@3", "unknown kind"),
        ("drop@1.5", "drop@1.5", "probability"),
        ("drop@0", "drop@0", None),  # index 0 is valid: drop the first frame
        ("disconnect@0.5", "disconnect@0.5", "frame index"),
        ("stall@100", "stall@100", "needs a duration"),
        ("drop@5:1s", "drop@5:1s", "only stall"),
        ("drop@", "drop@", "expected"),
        ("drop@1,,dup@2", "", "empty fault token"),
        ("dup@3#0", "dup@3#0", "start at 1"),
    ],
)
def test_bad_tokens_are_named(spec: str, token: str, why: str | None) -> None:
    if why is None:
        assert FaultSpec.parse(spec).faults == (Fault("drop", index=0),)
        return
    with pytest.raises(FaultSpecError) as exc:
        FaultSpec.parse(spec)
    assert token in str(exc.value) and why in str(exc.value)


_token = st.builds(
    lambda kind, n: f"{kind}@{n}" + (":1s" if kind == "stall" else ""),
    st.sampled_from(KINDS),
    st.integers(0, 10**9),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_token, min_size=1, max_size=6))
def test_valid_specs_round_trip(tokens: list[str]) -> None:
    spec = FaultSpec.parse(",".join(tokens))
    assert [f"{f.kind}@{f.index}" for f in spec.faults] == [t.split(":")[0] for t in tokens]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_garbage_is_rejected_with_the_token(text: str) -> None:
    """Anything the grammar does not accept raises FaultSpecError quoting the bad token."""
    try:
        spec = FaultSpec.parse(text)
    except FaultSpecError as exc:
        msg = str(exc)
        bad = [t for t in text.split(",") if "".join(t.split())]
        assert "empty fault token" in msg or any(repr("".join(t.split())) in msg for t in bad)
        return
    for f in spec.faults:
        assert f.kind in KINDS
        assert f.index is not None or 0 < f.probability < 1


def test_corrupt_checksum_v1_and_v2() -> None:
    assert corrupt_checksum(b'{"checksum":4294967295,"x":1}') == b'{"checksum":0,"x":1}'
    assert corrupt_checksum(b'[1,{"b":[],"c":"17"},"book-10","XBT/USD"]') == (
        b'[1,{"b":[],"c":"18"},"book-10","XBT/USD"]'
    )
    assert corrupt_checksum(b'{"e":"depthUpdate"}') is None


def test_plan_is_deterministic_per_seed_and_counts() -> None:
    spec = FaultSpec.parse("drop@0.1,dup@0.1,reorder@0.1")
    frames = [str(i).encode() for i in range(2000)]

    def run(seed: int) -> tuple[list[bytes], tuple[int, int, int]]:
        plan = spec.for_connection(1, seed)
        out: list[bytes] = []
        for i, f in enumerate(frames):
            plan.apply(i, f, out)
        plan.finish(out)
        c = plan.counts
        return out, (c.dropped, c.duplicated, c.reordered)

    a, counts = run(7)
    assert run(7) == (a, counts) and run(8)[0] != a
    dropped, duplicated, reordered = counts
    assert 100 < dropped < 300 and 50 < duplicated < 300 and 50 < reordered < 300
    assert len(a) == len(frames) - dropped + duplicated
    assert sorted(set(a), key=int) == [f for f in frames if f in set(a)]
