"""What one gateway process serves and how: built by `ssmd gateway` or by tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ssmd.spec.model import Environment


@dataclass
class GatewaySettings:
    definition: Environment
    """The environment served (feeds, storage, clients come from Postgres)."""
    pg_url: str
    nats_url: str | None = None
    """NATS for the recent window of history (and the status heartbeat); None = archive only."""
    data_dir: Path | None = None
    """Overrides the definition's storage.data_dir (local objects and the read cache)."""
    rate: float = 20.0
    """Requests per second per API key (token bucket); 0 = unlimited."""
    burst: float = 40.0
    auth_ttl_s: float = 2.0
    """How long a validated key is trusted before it is checked again (revocation delay)."""
    usage_interval_s: float = 10.0
    """Usage counters are flushed to Postgres this often."""
    status_interval_s: float = 5.0
    """KV heartbeat period (when nats_url is set)."""
    default_limit: int = 1000
    max_limit: int = 100_000
    instance: str = ""
    """Name of this gateway in status keys (default host:port)."""

    @property
    def env(self) -> str:
        return self.definition.metadata.name

    @property
    def root(self) -> Path:
        return (self.data_dir or Path(self.definition.storage.data_dir)).resolve()
