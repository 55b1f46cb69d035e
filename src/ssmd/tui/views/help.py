"""? — the keys, and what each figure means (the same words as docs/tui.md)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ssmd.tui.format import RateHistory
from ssmd.tui.snapshot import Snapshot
from ssmd.tui.views.common import View

HELP = """\
[b]Keys[/]
 o home (overview)   f feeds   c clients & keys   s storage   q quality
 l logs (←/→ other logs)   ? this help   x quit   ↑/↓ move   Tab next table
 on clients & keys: r revoke the selected key (asks first), n new key (the
 secret is shown once; only its hash is stored)

[b]What the figures mean[/]
 health    ok: the component's heartbeat (KV ssmd_ENV_status) is fresh;
           STALE: none for 3 of its intervals (stuck or dead: see its log);
           unreachable: NATS or Postgres did not answer (see the top bar)
 conns     live/total venue connections of a connector shard
 rec/s     records per second acknowledged by JetStream, from the heartbeat;
           sparklines keep one sample per heartbeat (5 min at 5 s)
 lag       connector: records captured, not yet acknowledged;
           shipper: segments not yet verified in the object store
 last gap  the newest gap of a shard (reconnect, checksum...), its age, symbol
 clock     ok, or the clock alarms (unsynchronized kernel clock, negative
           latency, wall-clock jumps, drift): docs/clocks.md
 storage   bytes under the data dir, the segment catalog, JetStream's files

Key changes run `ssmd key revoke|create`'s own code: the same checks and the
same audit entry (actor: --actor, $SSMD_ACTOR or your user name)."""


class Help(View):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(HELP, id="help-text")

    def show(self, snap: Snapshot, history: RateHistory) -> None:
        return None
