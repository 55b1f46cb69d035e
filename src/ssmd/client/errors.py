"""Typed errors: every gateway refusal becomes one exception carrying the server's words.

Why typed: a caller handles "my key is wrong" (401), "I am not entitled" (403) and
"slow down" (429) differently, and should never have to parse a message to tell them
apart. Each error keeps the gateway's `error` code and `message` verbatim.
"""

from __future__ import annotations


class ClientError(Exception):
    """A refusal or failure talking to the gateway (`status` 0 = no HTTP status)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.message = message
        self.status = status
        self.code = code


class AuthenticationError(ClientError):
    """401: no key, an unknown/revoked/expired key, or a key of another environment."""


class PermissionDenied(ClientError):
    """403: the key lacks a scope, or the client is not entitled to what was asked."""


class RateLimited(ClientError):
    """429: over the key's rate limit; `retry_after` is the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None, code: str = "") -> None:
        super().__init__(message, status=429, code=code or "rate_limited")
        self.retry_after = retry_after


class BadRequest(ClientError):
    """400: a parameter is missing or invalid (the message names it)."""


class NotFound(ClientError):
    """404: unknown feed or path."""


class Unavailable(ClientError):
    """503 (object store or NATS down), or the gateway could not be reached."""


class StreamError(ClientError):
    """A `/v1/stream` error the client cannot recover from by reconnecting
    (a refused subscription, a failed transform or replay)."""


_BY_STATUS: dict[int, type[ClientError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    503: Unavailable,
}

AUTH_CODES = frozenset(
    {"missing_api_key", "invalid_api_key", "invalid_authorization", "wrong_environment"}
)
FORBIDDEN_CODES = frozenset({"missing_scope", "not_entitled", "forbidden"})


def for_status(status: int, code: str, message: str) -> ClientError:
    """The exception for an HTTP refusal (429 is built by the caller: it has a header)."""
    cls = _BY_STATUS.get(status, ClientError)
    return cls(message, status=status, code=code)


def for_stream_code(code: str, message: str) -> ClientError:
    """The exception for a stream `error` frame's code."""
    if code in AUTH_CODES:
        return AuthenticationError(message, status=401, code=code)
    if code in FORBIDDEN_CODES:
        return PermissionDenied(message, status=403, code=code)
    return StreamError(message, code=code)
