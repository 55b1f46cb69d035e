"""The ssmd Python client: history over REST, live records over WebSocket (docs/client.md).

from ssmd.client import Client
c = Client()                      # $SSMD_URL, $SSMD_API_KEY
df = c.trades("sim", "BTC-USD", "2026-03-01", "2026-03-02").to_pandas()
async for rec in c.stream("sim", types=["trade"], symbols=["BTC-*"]): ...
"""

from ssmd.client.client import Client
from ssmd.client.errors import (
    AuthenticationError,
    BadRequest,
    ClientError,
    NotFound,
    PermissionDenied,
    RateLimited,
    StreamError,
    Unavailable,
)
from ssmd.client.events import BookUnknown, Event, Live, Reconnecting, Subscribed
from ssmd.client.results import Bar, Bars, BookAt, Records
from ssmd.client.stream import Stream

__all__ = [
    "AuthenticationError",
    "BadRequest",
    "Bar",
    "Bars",
    "BookAt",
    "BookUnknown",
    "Client",
    "ClientError",
    "Event",
    "Live",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "Reconnecting",
    "Records",
    "Stream",
    "StreamError",
    "Subscribed",
    "Unavailable",
]
