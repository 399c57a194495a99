"""WebSocket stream routing of the simulated exchange: names, subscriptions and per-connection fan-out.

Owns: stream-name validation with the exchange's error codes (4006 invalid stream, 4008 invalid depth window),
the subscription registry that maps a stream to the connections that receive it, the bounded per-connection
outbox, and the aggregation of real-time depth updates into ``depth.<window>.<symbol>`` frames.

Invariants: a connection holds a stream at most once (subscribing twice does not duplicate delivery); private
(``account.*``) subscriptions are keyed by the authenticated account, so a private frame reaches only connections
authenticated for that account; an outbox never holds more than its capacity: a connection whose outbox overflows
is marked for dropping and receives nothing more (a slow client never blocks the others).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs
import trio

__all__ = [
    "DEPTH_WINDOWS_MS",
    "KLINE_INTERVALS",
    "PRIVATE_STREAMS",
    "PUBLIC_TYPES",
    "Connection",
    "DepthAggregator",
    "StreamError",
    "Subscriptions",
    "classify_stream",
]

PUBLIC_TYPES = frozenset({"bookTicker", "depth", "trade", "ticker", "markPrice", "openInterest"})
KLINE_INTERVALS = frozenset({"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d",
                             "1w", "1month"})
DEPTH_WINDOWS_MS = {"200ms": 200, "600ms": 600, "1000ms": 1000}
# Private stream families; those in _PER_SYMBOL also exist as ``<family>.<symbol>``.
PRIVATE_STREAMS = frozenset({"account.orderUpdate", "account.positionUpdate", "account.balanceUpdate",
                             "account.rfqUpdate"})
_PER_SYMBOL = frozenset({"account.orderUpdate", "account.positionUpdate", "account.rfqUpdate"})
_WINDOW_RE = re.compile(r"^\d+ms$")


@attrs.frozen
class StreamError(Exception):
    """A subscription the exchange answers with an error frame."""

    code: int
    message: str

    def frame(self) -> dict[str, Any]:
        return {"id": None, "error": {"code": self.code, "message": self.message}}


INVALID_STREAM = StreamError(4006, "Invalid stream")
INVALID_DEPTH_WINDOW = StreamError(4008, "Invalid depth window")


def classify_stream(name: str) -> tuple[bool, str | None]:
    """``(private, depth_window)`` for a valid stream name; raises ``StreamError`` otherwise.

    Symbols may contain dots (``AAPL.US_USDC_PERP``), so a name splits at its first dot (the type) and, for
    klines and depth windows, at its second. An unknown symbol is *valid* here: the exchange stays silent.
    """
    if name == "liquidation":
        return False, None
    kind, _, rest = name.partition(".")
    if not rest:
        raise INVALID_STREAM
    if kind == "account":
        family, _, symbol = rest.partition(".")
        full = f"account.{family}"
        if full not in PRIVATE_STREAMS or (symbol and full not in _PER_SYMBOL):
            raise INVALID_STREAM
        return True, None
    if kind == "kline":
        interval, _, symbol = rest.partition(".")
        if interval not in KLINE_INTERVALS or not symbol:
            raise INVALID_STREAM
        return False, None
    if kind == "depth":
        first, _, symbol = rest.partition(".")
        if symbol and _WINDOW_RE.match(first):
            if first not in DEPTH_WINDOWS_MS:
                raise INVALID_DEPTH_WINDOW
            return False, first
        return False, None
    if kind in PUBLIC_TYPES or kind == "liquidation":
        return False, None
    raise INVALID_STREAM


class Connection:
    """One WebSocket client: its subscriptions, its account (once authenticated) and its bounded outbox."""

    __slots__ = ("_drained", "_low_water", "account", "close_code", "closed", "frames_queued", "id",
                 "outbox_receive", "outbox_send", "streams")

    def __init__(self, conn_id: int, capacity: int) -> None:
        self.id = conn_id
        self.account: str | None = None
        self.streams: set[str] = set()
        self.outbox_send, self.outbox_receive = trio.open_memory_channel[str](capacity)
        self.closed = False
        self.close_code = 1000
        self.frames_queued = 0
        self._drained: trio.Event | None = None
        self._low_water = 0

    def push(self, frame: str) -> bool:
        """Queue one frame; False (and the connection marked for dropping) when the outbox is full."""
        if self.closed:
            return True
        try:
            self.outbox_send.send_nowait(frame)
        except trio.WouldBlock:
            self.close(1008)
            return False
        except trio.BrokenResourceError:
            # The writer is gone (the client disconnected); the session's cleanup is about to unsubscribe.
            self.close(1000)
            return True
        self.frames_queued += 1
        return True

    def close(self, code: int) -> None:
        """Stop delivery; the connection's writer notices the closed outbox and closes the socket."""
        if not self.closed:
            self.closed = True
            self.close_code = code
            self.outbox_send.close()
            if self._drained is not None:
                self._drained.set()
                self._drained = None

    def backlog(self) -> int:
        return self.outbox_send.statistics().current_buffer_used

    async def wait_backlog_at_most(self, frames: int) -> None:
        """Return once the outbox holds at most ``frames`` frames (or the connection closed)."""
        while self.backlog() > frames and not self.closed:
            self._low_water = frames
            self._drained = trio.Event()
            await self._drained.wait()

    def frame_sent(self) -> None:
        """Called by the connection's writer after each frame; wakes ``wait_backlog_at_most``."""
        if self._drained is not None and (self.backlog() <= self._low_water or self.closed):
            self._drained.set()
            self._drained = None


class Subscriptions:
    """Which connections receive which stream. Private keys are ``account\\x00stream``."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[Connection]] = {}

    @staticmethod
    def key(stream: str, account: str | None) -> str:
        return stream if account is None else f"{account}\x00{stream}"

    def add(self, conn: Connection, stream: str, account: str | None) -> bool:
        """Subscribe; False when the connection already had the stream (no duplicate delivery)."""
        key = self.key(stream, account)
        if key in conn.streams:
            return False
        conn.streams.add(key)
        self._by_key.setdefault(key, set()).add(conn)
        return True

    def remove(self, conn: Connection, stream: str, account: str | None) -> None:
        key = self.key(stream, account)
        conn.streams.discard(key)
        members = self._by_key.get(key)
        if members is not None:
            members.discard(conn)
            if not members:
                del self._by_key[key]

    def remove_all(self, conn: Connection) -> None:
        for key in list(conn.streams):
            members = self._by_key.get(key)
            if members is not None:
                members.discard(conn)
                if not members:
                    del self._by_key[key]
        conn.streams.clear()

    def members(self, key: str) -> set[Connection] | None:
        return self._by_key.get(key)

    def has(self, key: str) -> bool:
        return key in self._by_key


class DepthAggregator:
    """Merges real-time depth updates of one symbol into one frame per window (absolute sizes, last wins)."""

    __slots__ = ("_asks", "_bids", "_engine_us", "_first_u", "_last_u", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._asks: dict[str, str] = {}
        self._bids: dict[str, str] = {}
        self._first_u: int | None = None
        self._last_u = 0
        self._engine_us = 0

    def add(self, data: dict[str, Any]) -> None:
        if self._first_u is None:
            self._first_u = int(data["U"])
        self._last_u = int(data["u"])
        self._engine_us = int(data.get("T", data.get("E", 0)))
        for price, size in data.get("a", ()):
            self._asks[price] = size
        for price, size in data.get("b", ()):
            self._bids[price] = size

    def flush(self, event_us: int) -> dict[str, Any] | None:
        """The aggregated frame payload, or None when nothing changed in this window."""
        if self._first_u is None:
            return None
        payload = {
            "e": "depth", "E": event_us, "T": self._engine_us, "s": self.symbol, "U": self._first_u,
            "u": self._last_u, "a": _ascending(self._asks.items()), "b": _ascending(self._bids.items()),
        }
        self._asks.clear()
        self._bids.clear()
        self._first_u = None
        return payload


def _ascending(levels: Iterable[tuple[str, str]]) -> list[list[str]]:
    return [[p, q] for p, q in sorted(levels, key=lambda level: Decimal(level[0]))]
