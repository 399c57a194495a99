"""The vocabulary the feed actor sends to the cache (pure records; one declared union, ``FeedEvent``).

Rule 1: every event carries the local receive time on the trio clock (``recv_s``, seconds) so that ages are
measured on one monotonic clock; decoded exchange events also carry the injected wall-clock receive time
(``recv_ms``) so that exchange-to-receive latency can be measured.
Rule 2: the feed reports every problem it handles (decode failures, book resyncs, stalls, connection changes)
as an event, because it is restarted on transient failures and so cannot keep counters across connections;
the cache owns the counters.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, TypeAlias

import attrs

from engine.backpack.events import Levels, WsEvent

__all__ = [
    "BookInvalid",
    "BookState",
    "DecodeFailed",
    "FeedEvent",
    "FeedStatus",
    "Received",
    "StreamStalled",
]


@attrs.frozen(kw_only=True)
class Received:
    """One decoded WebSocket event and when it arrived."""

    event: WsEvent
    recv_s: float
    recv_ms: int


@attrs.frozen(kw_only=True)
class BookState:
    """The local order book of one market after a snapshot or an applied delta (top levels only)."""

    symbol: str
    update_id: int
    bids: Levels  # best first
    asks: Levels  # best first
    bid_depth: Decimal  # base quantity within depth_bps of the mid
    ask_depth: Decimal
    depth_bps: Decimal
    engine_time_us: int | None  # None right after a REST snapshot
    recv_s: float


@attrs.frozen(kw_only=True)
class BookInvalid:
    """The local book was discarded (gap, crossed book, decode failure, buffer overflow); a resync follows."""

    symbol: str
    reason: str
    gap: bool  # True when the cause was an update-id gap
    recv_s: float


@attrs.frozen(kw_only=True)
class FeedStatus:
    """The connection came up (every subscription sent) or went down (with the reason)."""

    state: Literal["connected", "disconnected"]
    streams: tuple[str, ...]
    reason: str
    recv_s: float


@attrs.frozen(kw_only=True)
class DecodeFailed:
    """A frame could not be decoded; counted by stream type and reason, never fatal."""

    stream: str
    reason: str
    recv_s: float


@attrs.frozen(kw_only=True)
class StreamStalled:
    """A stream stayed silent past its limit; the feed raises FeedStale right after sending this."""

    stream: str
    silent_s: float
    recv_s: float


FeedEvent: TypeAlias = Received | BookState | BookInvalid | FeedStatus | DecodeFailed | StreamStalled
