"""The engine's one exception tree, split by whose fault it is and whether a retry can help.

::

    EngineError
    +-- TransientError            restartable by supervisor policy (backoff, intensity cap)
    |   +-- FeedDisconnected      the WebSocket closed or could not be opened
    |   +-- FeedStale             a stream stayed silent past its freshness limit
    |   +-- ExchangeUnavailable   network failure, timeout, HTTP 5xx, maintenance
    |   +-- RateLimited           HTTP 429 (also an ApiError)
    +-- FatalError                cancels the whole actor tree
    |   +-- ConfigError           bad configuration (lists every problem at once)
    |   +-- AuthError             keys rejected, bad signature (also an ApiError when the exchange said so)
    |   +-- InvariantViolation    a bug: an impossible state or an unknown message
    |   +-- RestartIntensityExceeded  an actor failed more often than its policy allows
    +-- ProtocolError             malformed bytes on the wire (counted, never crashes the engine)
    |   +-- LocalProtocolError    we were about to send something the protocol forbids
    |   +-- RemoteProtocolError   the peer sent something we cannot decode
    +-- ApiError                  the exchange answered with an error body {"code","message"}
        +-- OrderRejected         the exchange refused an order (INVALID_ORDER, INSUFFICIENT_FUNDS, ...)
        +-- NotFound              RESOURCE_NOT_FOUND (e.g. an order that is no longer on the book)
        +-- SignatureRejected     bad signature, expired window, unknown key (also an AuthError)
        +-- ServerUnavailable     HTTP 5xx, MAINTENANCE, TIMEOUT (also an ExchangeUnavailable)

Third-party exceptions (httpx, trio-websocket, json, nacl) are translated into this tree in exactly one
place per boundary, with ``raise OurError(...) from exc``.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "ConfigError",
    "EngineError",
    "ExchangeUnavailable",
    "FatalError",
    "FeedDisconnected",
    "FeedStale",
    "InvariantViolation",
    "LocalProtocolError",
    "NotFound",
    "OrderRejected",
    "ProtocolError",
    "RateLimited",
    "RemoteProtocolError",
    "RestartIntensityExceeded",
    "ServerUnavailable",
    "SignatureRejected",
    "TransientError",
]


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""


class TransientError(EngineError):
    """A failure that a restart with backoff can fix."""


class FeedDisconnected(TransientError):
    pass


class FeedStale(TransientError):
    pass


class ExchangeUnavailable(TransientError):
    pass


class FatalError(EngineError):
    """A failure no retry can fix: the supervisor cancels the whole tree."""


class ConfigError(FatalError):
    """Configuration problems, all of them at once, each prefixed with its TOML path."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class AuthError(FatalError):
    pass


class InvariantViolation(FatalError):
    pass


class RestartIntensityExceeded(FatalError):
    pass


class ProtocolError(EngineError):
    """Malformed input on the wire. The message says what and where."""


class LocalProtocolError(ProtocolError):
    pass


class RemoteProtocolError(ProtocolError):
    pass


class ApiError(EngineError):
    """An error body returned by the exchange: ``{"code": ..., "message": ...}`` with its HTTP status."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        self.code = code
        self.message = message
        self.status = status
        super().__init__(f"{status or '-'} {code}: {message}")


class RateLimited(ApiError, TransientError):
    pass


class OrderRejected(ApiError):
    pass


class NotFound(ApiError):
    pass


class SignatureRejected(ApiError, AuthError):
    """The exchange refused our credentials: bad signature, expired window, unknown or unauthorised key."""


class ServerUnavailable(ApiError, ExchangeUnavailable):
    """The exchange answered 5xx / MAINTENANCE / TIMEOUT: transient, retry with backoff."""
