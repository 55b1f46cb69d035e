"""When is a connection dead, and when is an instrument stale? (pure; times in seconds)

Two separate questions, because illiquid instruments make the naive rule wrong:

1. **Connection liveness** (`liveness`): judged only by what we *receive* — any data
   frame, a pong, a venue heartbeat, a server ping. Sending a ping proves nothing. After
   `ping_after` seconds without receiving anything we ping (WS ping and, where the venue
   has one, its app-level heartbeat); after `silence_timeout` seconds without receiving
   anything the connection is dead and is replaced. Pongs keep a connection alive even
   when no instrument trades: that is correct, the socket works.

2. **Instrument staleness** (`InstrumentStaleness`): an instrument that sends nothing
   for a while is usually just quiet. It counts as stale only when *both*
   - it has been silent longer than its own threshold, learned from its history
     (`gap_multiple` × its smoothed inter-arrival time, clamped to
     [`min_stale`, `max_stale`], or an explicit per-symbol override), and
   - the venue's heartbeat evidence for it is also silent for `heartbeat_timeout`:
     its per-instrument heartbeat where the venue has one (Coinbase `heartbeat` per
     product), else the connection-level heartbeat channel (Kraken `heartbeat`).
   A venue that proves it is alive and subscribed while an instrument says nothing is
   telling us the instrument is quiet, not that we lost it. Venues without heartbeat
   channels fall back to the learned threshold alone.

The runtime turns a stale change into a `gap(reason=stale)` record and a resubscribe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Liveness = Literal["ok", "ping", "dead"]


@dataclass(frozen=True)
class StalenessPolicy:
    """Thresholds, in seconds; defaults suit crypto venues (document overrides per feed)."""

    ping_after: float = 5.0
    silence_timeout: float = 20.0
    min_stale: float = 60.0
    max_stale: float = 3600.0
    gap_multiple: float = 20.0
    heartbeat_timeout: float = 30.0
    smoothing: float = 0.1
    """Weight of the newest inter-arrival gap in the running average (EWMA)."""


def liveness(now: float, last_rx: float, last_ping: float, policy: StalenessPolicy) -> Liveness:
    """'dead' when nothing was received for silence_timeout; 'ping' when idle for
    ping_after and no ping went out since then; else 'ok'. `last_rx` is the newest
    receive of anything (connect time before the first frame)."""
    idle = now - last_rx
    if idle >= policy.silence_timeout:
        return "dead"
    if idle >= policy.ping_after and now - last_ping >= policy.ping_after:
        return "ping"
    return "ok"


@dataclass
class _Instrument:
    last_data: float
    mean_gap: float | None = None
    last_heartbeat: float | None = None
    stale: bool = False


@dataclass(frozen=True)
class StaleChange:
    """An instrument became stale (stale=True) or recovered; `since` = its last data."""

    symbol: str
    stale: bool
    since: float


@dataclass
class InstrumentStaleness:
    """Per-connection tracker; feed it data/heartbeat times and poll `check(now)`."""

    policy: StalenessPolicy = field(default_factory=StalenessPolicy)
    overrides: dict[str, float] = field(default_factory=dict)
    _symbols: dict[str, _Instrument] = field(default_factory=dict)
    _conn_heartbeat: float | None = None

    def watch(self, symbol: str, now: float) -> None:
        """Start tracking (on subscribe); silence is counted from `now`."""
        self._symbols.setdefault(symbol, _Instrument(last_data=now))

    def forget(self, symbol: str) -> None:
        self._symbols.pop(symbol, None)

    def data(self, symbol: str, now: float) -> StaleChange | None:
        """A record for `symbol` arrived; returns the recovery if it was stale."""
        inst = self._symbols.get(symbol)
        if inst is None:
            self._symbols[symbol] = _Instrument(last_data=now)
            return None
        gap = max(0.0, now - inst.last_data)
        a = self.policy.smoothing
        inst.mean_gap = gap if inst.mean_gap is None else (1 - a) * inst.mean_gap + a * gap
        inst.last_data = now
        if inst.stale:
            inst.stale = False
            return StaleChange(symbol, False, now)
        return None

    def heartbeat(self, now: float, symbol: str | None = None) -> None:
        """A venue heartbeat: for one instrument, or for the connection (symbol=None)."""
        if symbol is None:
            self._conn_heartbeat = now
        elif (inst := self._symbols.get(symbol)) is not None:
            inst.last_heartbeat = now

    def threshold(self, symbol: str) -> float:
        """Seconds of silence after which `symbol` may be stale (learned or overridden)."""
        if symbol in self.overrides:
            return self.overrides[symbol]
        p = self.policy
        inst = self._symbols.get(symbol)
        if inst is None or inst.mean_gap is None:
            return p.min_stale
        return min(p.max_stale, max(p.min_stale, p.gap_multiple * inst.mean_gap))

    def heartbeat_silent(self, symbol: str, now: float) -> bool:
        inst = self._symbols.get(symbol)
        own = inst.last_heartbeat if inst is not None else None
        newest = max((t for t in (own, self._conn_heartbeat) if t is not None), default=None)
        return newest is None or now - newest >= self.policy.heartbeat_timeout

    def check(self, now: float) -> list[StaleChange]:
        """Instruments that became stale since the last check (each reported once)."""
        out = []
        for symbol, inst in self._symbols.items():
            if inst.stale:
                continue
            if now - inst.last_data >= self.threshold(symbol) and self.heartbeat_silent(
                symbol, now
            ):
                inst.stale = True
                out.append(StaleChange(symbol, True, inst.last_data))
        return out

    def stale(self) -> list[str]:
        return [s for s, inst in self._symbols.items() if inst.stale]
