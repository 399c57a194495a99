"""Local order book sync for one market: REST snapshot + buffered depth deltas (protocol 5.2, "Building a
local book"). Pure: the caller fetches the snapshot and passes frames in.

States: ``SYNCING`` (buffering deltas, waiting for a snapshot) and ``LIVE`` (book valid). Rules:

1. While syncing, deltas are buffered (bounded; overflow asks for a new snapshot).
2. On a snapshot with id L, buffered frames with ``u <= L`` are dropped; the first kept frame must satisfy
   ``U <= L + 1 <= u``, else the snapshot is too old and a new one is needed. If no frame is kept yet, the
   book goes live at L and waits for the bridging frame.
3. Live: a frame with ``u <= last`` is ignored (already applied); ``U == last + 1`` is applied (or, right after a
   snapshot, any frame with ``U <= last + 1 <= u``); anything else is a gap.
4. After applying, a crossed book (best bid >= best ask) is invalid.

A gap, crossed book or buffer overflow returns :class:`Resync` and drops the book back to ``SYNCING`` (the
caller then fetches a new snapshot); the book never serves levels while syncing. Levels are keyed by numeric
price; size 0 deletes a level.
"""

from __future__ import annotations

import enum
import heapq
from decimal import Decimal

import attrs

from engine.backpack.events import Depth, Level, Levels
from engine.market.rest import DepthSnapshot

__all__ = ["Applied", "DepthSync", "Ignored", "Resync", "SyncOutcome", "SyncState"]


class SyncState(enum.Enum):
    SYNCING = "syncing"
    LIVE = "live"


@attrs.frozen(kw_only=True)
class Applied:
    update_id: int
    frames: int  # how many frames were applied (more than one when a buffer was replayed)


@attrs.frozen(kw_only=True)
class Ignored:
    reason: str  # "buffered", "already applied", "waiting for bridging frame"


@attrs.frozen(kw_only=True)
class Resync:
    reason: str
    gap: bool


SyncOutcome = Applied | Ignored | Resync


class DepthSync:
    __slots__ = ("_asks", "_bids", "_bridged", "_buffer", "_last", "max_buffer", "state", "symbol")

    def __init__(self, symbol: str, *, max_buffer: int) -> None:
        self.symbol = symbol
        self.max_buffer = max_buffer
        self.state = SyncState.SYNCING
        self._buffer: list[Depth] = []
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._last = 0
        self._bridged = False

    @property
    def update_id(self) -> int:
        return self._last

    def _reset(self, reason: str, *, gap: bool) -> Resync:
        self.state = SyncState.SYNCING
        self._bids.clear()
        self._asks.clear()
        self._buffer.clear()
        self._bridged = False
        return Resync(reason=reason, gap=gap)

    def invalidate(self, reason: str) -> Resync:
        """Drop the book (e.g. a depth frame failed to decode); a new snapshot is needed."""
        return self._reset(reason, gap=False)

    def on_delta(self, frame: Depth) -> SyncOutcome:
        if self.state is SyncState.SYNCING:
            if len(self._buffer) >= self.max_buffer:
                return self._reset(f"{len(self._buffer)} frames buffered without a usable snapshot", gap=False)
            self._buffer.append(frame)
            return Ignored(reason="buffered")
        return self._apply_live(frame)

    def _apply_live(self, frame: Depth) -> SyncOutcome:
        if frame.last_update_id <= self._last:
            return Ignored(reason="already applied")
        if not self._bridged:
            if not frame.first_update_id <= self._last + 1 <= frame.last_update_id:
                return self._reset(
                    f"first frame after snapshot {self._last} starts at {frame.first_update_id}", gap=True)
        elif frame.first_update_id != self._last + 1:
            return self._reset(f"update id gap: expected {self._last + 1}, got {frame.first_update_id}", gap=True)
        self._bridged = True
        self._put(self._bids, frame.bids)
        self._put(self._asks, frame.asks)
        self._last = frame.last_update_id
        bid, ask = self.best_bid(), self.best_ask()
        if bid is not None and ask is not None and bid[0] >= ask[0]:
            return self._reset(f"crossed book after update {self._last}: bid {bid[0]} >= ask {ask[0]}", gap=False)
        return Applied(update_id=self._last, frames=1)

    @staticmethod
    def _put(side: dict[Decimal, Decimal], levels: Levels) -> None:
        for price, size in levels:
            if size == 0:
                side.pop(price, None)
            else:
                side[price] = size

    def on_snapshot(self, snap: DepthSnapshot) -> SyncOutcome:
        """Load a snapshot and replay the buffered frames after it."""
        buffered = [f for f in self._buffer if f.last_update_id > snap.last_update_id]
        self._buffer.clear()
        if buffered and buffered[0].first_update_id > snap.last_update_id + 1:
            return self._reset(
                f"snapshot {snap.last_update_id} is older than the buffered frames (from {buffered[0].first_update_id})",
                gap=True)
        self._bids = {p: s for p, s in snap.bids if s != 0}
        self._asks = {p: s for p, s in snap.asks if s != 0}
        self._last = snap.last_update_id
        self._bridged = False
        self.state = SyncState.LIVE
        bid, ask = self.best_bid(), self.best_ask()
        if bid is not None and ask is not None and bid[0] >= ask[0]:
            return self._reset(f"crossed snapshot {snap.last_update_id}", gap=False)
        applied = 0
        for frame in buffered:
            outcome = self._apply_live(frame)
            if isinstance(outcome, Resync):
                return outcome
            applied += isinstance(outcome, Applied)
        return Applied(update_id=self._last, frames=applied)

    def best_bid(self) -> Level | None:
        if not self._bids:
            return None
        price = max(self._bids)
        return price, self._bids[price]

    def best_ask(self) -> Level | None:
        if not self._asks:
            return None
        price = min(self._asks)
        return price, self._asks[price]

    def top(self, n: int) -> tuple[Levels, Levels]:
        """Up to ``n`` levels per side, best first (empty while syncing)."""
        if self.state is not SyncState.LIVE:
            return (), ()
        bids = tuple((p, self._bids[p]) for p in heapq.nlargest(n, self._bids))
        asks = tuple((p, self._asks[p]) for p in heapq.nsmallest(n, self._asks))
        return bids, asks

    def depth_within(self, bps: Decimal) -> tuple[Decimal, Decimal]:
        """Base quantity on each side within ``bps`` of the mid (0, 0 when a side is empty)."""
        bid, ask = self.best_bid(), self.best_ask()
        if self.state is not SyncState.LIVE or bid is None or ask is None:
            return Decimal(0), Decimal(0)
        mid = (bid[0] + ask[0]) / 2
        reach = mid * bps / Decimal(10000)
        bid_qty = sum((s for p, s in self._bids.items() if p >= mid - reach), Decimal(0))
        ask_qty = sum((s for p, s in self._asks.items() if p <= mid + reach), Decimal(0))
        return bid_qty, ask_qty

    def levels(self) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        """Copies of the full book (for tests and diagnostics)."""
        return dict(self._bids), dict(self._asks)
