"""ssmd's replay server: recordings and synthetic markets served in a venue's protocol.

`ReplayServer` (asyncio, in-process) and `ReplayProcess` (a subprocess, for `ssmd up`)
serve fixture recordings, raw journals or a deterministic synthetic tape over
WebSocket, with REST siblings on the same port and optional fault injection.
See docs/replay-server.md.
"""

from ssmd.replay.faults import FaultSpec, FaultSpecError
from ssmd.replay.process import ReplayProcess, replay_command
from ssmd.replay.server import ReplayServer

__all__ = ["FaultSpec", "FaultSpecError", "ReplayProcess", "ReplayServer", "replay_command"]
