"""Pure session rules: backoff bounds, pacing, Retry-After, liveness and staleness."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.capture.policy import BANNED_DEFAULT_S, BackoffPolicy, TokenBucket, retry_after
from ssmd.capture.staleness import InstrumentStaleness, StaleChange, StalenessPolicy, liveness

policies = st.builds(
    BackoffPolicy,
    base=st.floats(0.001, 10),
    cap=st.floats(0.001, 600),
    stable_after=st.floats(0, 100),
)


@settings(max_examples=300)
@given(policy=policies, attempt=st.integers(0, 5000), u=st.floats(0, 1, exclude_max=True))
def test_backoff_delay_within_full_jitter_window(
    policy: BackoffPolicy, attempt: int, u: float
) -> None:
    delay = policy.delay(attempt, u)
    ceiling = policy.ceiling(attempt)
    assert 0 <= delay <= ceiling <= policy.cap
    assert ceiling == min(policy.cap, policy.base * 2 ** min(attempt, 1023))
    assert policy.delay(attempt, 0.0) == 0.0


@settings(max_examples=200)
@given(policy=policies, attempt=st.integers(0, 200))
def test_backoff_ceiling_grows_then_caps(policy: BackoffPolicy, attempt: int) -> None:
    assert policy.ceiling(attempt) <= policy.ceiling(attempt + 1)
    assert policy.ceiling(attempt + 1) in (policy.cap, 2 * policy.ceiling(attempt))


def test_backoff_sequence_values() -> None:
    policy = BackoffPolicy(base=0.5, cap=30)
    assert [policy.ceiling(a) for a in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert policy.delay(3, 0.5) == 2.0
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError):
            policy.delay(0, bad)
    with pytest.raises(ValueError):
        policy.ceiling(-1)


def test_full_jitter_spreads_uniformly() -> None:
    import random

    rng = random.Random(7)
    policy = BackoffPolicy(base=1, cap=8)
    delays = [policy.delay(10, rng.random()) for _ in range(20_000)]
    assert abs(sum(delays) / len(delays) - 4.0) < 0.1  # mean of U(0, 8)
    assert sum(d < 1 for d in delays) / len(delays) == pytest.approx(1 / 8, abs=0.01)


def test_retry_after() -> None:
    now = 1_700_000_000.0
    assert retry_after(429, {"Retry-After": "2"}, now) == 2.0
    assert retry_after(418, {"retry-after": "120"}, now) == 120.0
    assert retry_after(418, {}, now) == BANNED_DEFAULT_S
    assert retry_after(429, {}, now) == 1.0
    assert retry_after(503, {}, now) is None
    assert retry_after(503, {"Retry-After": "5"}, now) == 5.0
    assert retry_after(404, {"Retry-After": "5"}, now) is None
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after(429, {"Retry-After": date}, now) == pytest.approx(30, abs=1)
    assert retry_after(429, {"Retry-After": "garbage"}, now) == 1.0


def test_token_bucket_paces_after_the_burst() -> None:
    bucket = TokenBucket(rate=5, burst=2, now=0.0)
    waits = [bucket.take(0.0) for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0.2, 0.4, 0.6])
    bucket = TokenBucket(rate=5, burst=2, now=0.0)
    assert bucket.take(0.0) == 0 and bucket.take(0.0) == 0
    assert bucket.take(0.2) == pytest.approx(0)  # refilled one token in 200 ms
    assert bucket.take(10.0) == 0 and bucket.take(10.0) == 0  # burst refills, never beyond
    assert bucket.take(10.0) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


@settings(max_examples=200)
@given(
    rate=st.floats(0.5, 100),
    burst=st.integers(1, 10),
    calls=st.lists(st.floats(0, 0.5), min_size=1, max_size=50),
)
def test_token_bucket_never_exceeds_rate(rate: float, burst: int, calls: list[float]) -> None:
    """Sending at the times the bucket allows: any window of T seconds holds at most
    burst + rate*T messages."""
    bucket = TokenBucket(rate, burst, 0.0)
    now, sent = 0.0, []
    for gap in calls:
        now += gap
        now += bucket.take(now)
        sent.append(now)
    for i, start in enumerate(sent):
        for j in range(i, len(sent)):
            assert j - i + 1 <= burst + rate * (sent[j] - start) + 1e-6


def test_liveness() -> None:
    p = StalenessPolicy(ping_after=5, silence_timeout=20)
    assert liveness(now=4, last_rx=0, last_ping=0, policy=p) == "ok"
    assert liveness(now=5, last_rx=0, last_ping=0, policy=p) == "ping"
    assert liveness(now=6, last_rx=0, last_ping=5, policy=p) == "ok"  # already pinged
    assert liveness(now=10, last_rx=0, last_ping=5, policy=p) == "ping"
    assert liveness(now=19.9, last_rx=0, last_ping=15, policy=p) == "ok"
    assert liveness(now=20, last_rx=0, last_ping=19, policy=p) == "dead"  # pings are not rx
    assert liveness(now=20, last_rx=19, last_ping=19, policy=p) == "ok"


def test_illiquid_instrument_is_not_stale_while_the_venue_heartbeats() -> None:
    p = StalenessPolicy(min_stale=60, max_stale=3600, gap_multiple=10, heartbeat_timeout=30)
    t = InstrumentStaleness(p)
    t.watch("LIQ", 0)
    t.watch("ILLIQ", 0)
    for i in range(1, 101):  # LIQ every 0.1 s, ILLIQ every 300 s
        t.data("LIQ", i * 0.1)
    for i in range(1, 4):
        t.data("ILLIQ", i * 300.0)
    assert t.threshold("LIQ") == 60  # 10 x 0.1 s, floored
    assert t.threshold("ILLIQ") == pytest.approx(3000)  # 10 x 300 s
    # The venue heartbeats every 10 s from 900 s on: nothing is stale however long.
    for beat in range(900, 3000, 10):
        t.heartbeat(beat)
        assert t.check(beat + 5) == []
    # Heartbeats stop at 2990: LIQ (silent since 10 s) is stale once they are 30 s old;
    # ILLIQ (silent since 900 s) only past its own 3000 s.
    assert t.check(3010) == []
    assert t.check(3020) == [StaleChange("LIQ", True, pytest.approx(10.0))]
    assert t.check(3021) == []  # reported once
    assert t.check(3899) == []
    assert t.check(3900) == [StaleChange("ILLIQ", True, 900.0)]
    assert set(t.stale()) == {"LIQ", "ILLIQ"}
    assert t.data("LIQ", 9000) == StaleChange("LIQ", False, 9000)
    assert t.stale() == ["ILLIQ"]


def test_per_instrument_heartbeat_and_overrides() -> None:
    p = StalenessPolicy(min_stale=60, heartbeat_timeout=30)
    t = InstrumentStaleness(p, overrides={"B": 600})
    t.watch("A", 0)
    t.watch("B", 0)
    for beat in range(0, 200, 10):  # only A has its own heartbeat
        t.heartbeat(beat, "A")
    assert t.check(195) == []
    assert t.heartbeat_silent("A", 195) is False and t.heartbeat_silent("B", 195) is True
    assert t.check(599) == [StaleChange("A", True, 0)]  # A's heartbeats stopped at 190
    assert t.check(600) == [StaleChange("B", True, 0)]  # override: 600 s
    t.forget("A")
    assert t.stale() == ["B"]
    t.heartbeat(700, "unknown")  # ignored


def test_new_symbol_without_history_uses_the_floor() -> None:
    t = InstrumentStaleness(StalenessPolicy(min_stale=60, heartbeat_timeout=30))
    t.data("NEW", 100)  # first sighting starts tracking
    assert t.threshold("NEW") == 60
    assert t.check(159) == [] and t.check(160) == [StaleChange("NEW", True, 100)]
