"""A local order book for one market: REST snapshot plus WebSocket depth deltas (section 5.2).

Rule 1: levels are keyed by numeric ``Decimal`` price (WS pads decimals, REST does not, so "86700" and
"86700.0" are the same level); a size of zero removes the level.
Rule 2: ids are never patched over. Before a snapshot, deltas are buffered; the snapshot drops buffered
frames with ``u <= lastUpdateId``; the first applied frame must bridge it (``U <= L + 1 <= u``) and every
later frame must continue it (``U == previous u + 1``). A gap, an overlap, or a crossed book yields
``ResyncNeeded`` and the book empties itself and waits for a new snapshot (buffering meanwhile); a stale
duplicate yields ``Ignored``. No method raises on bad input: every outcome is a value.
Rule 3: each side keeps a dict (price -> size) for O(1) updates and an ascending price list maintained with
``bisect`` for ordered queries; applying a delta costs O(k log n) comparisons for k changed levels.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from decimal import Decimal
from typing import TypeAlias

import attrs

from engine.backpack.events import Depth, Level, Levels, Side
from engine.backpack.responses import DepthSnapshot

__all__ = [
    "Applied",
    "BookOutcome",
    "BookStatistics",
    "Buffered",
    "Ignored",
    "OrderBook",
    "ResyncNeeded",
]

_BPS = Decimal(10000)
_TWO = Decimal(2)


@attrs.frozen(kw_only=True)
class Applied:
    """The book now reflects everything up to ``update_id``."""

    update_id: int


@attrs.frozen(kw_only=True)
class Buffered:
    """No snapshot yet (or the snapshot is ahead): the delta was kept for later; ``pending`` frames wait."""

    pending: int


@attrs.frozen(kw_only=True)
class Ignored:
    """The delta was dropped without harm (already covered, or for another market)."""

    reason: str


@attrs.frozen(kw_only=True)
class ResyncNeeded:
    """The book cannot continue: fetch a new snapshot. The book has been emptied."""

    reason: str


BookOutcome: TypeAlias = Applied | Buffered | Ignored | ResyncNeeded


@attrs.frozen(kw_only=True)
class BookStatistics:
    applied: int
    ignored: int
    buffered: int
    resyncs: int
    bid_levels: int
    ask_levels: int


class _SideBook:
    """One side: price -> size plus an ascending list of the prices present."""

    __slots__ = ("prices", "sizes")

    def __init__(self) -> None:
        self.sizes: dict[Decimal, Decimal] = {}
        self.prices: list[Decimal] = []

    def clear(self) -> None:
        self.sizes.clear()
        self.prices.clear()

    def load(self, levels: Levels) -> None:
        self.clear()
        for price, size in levels:
            if size > 0:
                self.sizes[price] = size
        self.prices = sorted(self.sizes)

    def set(self, price: Decimal, size: Decimal) -> None:
        sizes = self.sizes
        if size:
            if price not in sizes:
                insort(self.prices, price)
            sizes[price] = size
        elif price in sizes:
            del sizes[price]
            prices = self.prices
            del prices[bisect_left(prices, price)]


class OrderBook:
    """The local book of one market. Feed it ``apply_snapshot`` and ``apply_delta``; read it with queries."""

    def __init__(self, symbol: str, *, max_buffered: int = 10_000) -> None:
        self.symbol = symbol
        self._bids = _SideBook()
        self._asks = _SideBook()
        self._last_id: int | None = None
        # True once a frame bridging the snapshot id was applied; from then on U must equal last u + 1.
        self._bridged = False
        self._buffer: deque[Depth] = deque(maxlen=max_buffered)
        self._applied = 0
        self._ignored = 0
        self._buffered = 0
        self._resyncs = 0

    # --- state ------------------------------------------------------------------------------------------

    @property
    def is_synced(self) -> bool:
        """True when the book holds a snapshot and is continuous with the stream."""
        return self._last_id is not None and self._bridged

    @property
    def last_update_id(self) -> int | None:
        return self._last_id

    def statistics(self) -> BookStatistics:
        return BookStatistics(
            applied=self._applied,
            ignored=self._ignored,
            buffered=self._buffered,
            resyncs=self._resyncs,
            bid_levels=len(self._bids.prices),
            ask_levels=len(self._asks.prices),
        )

    def _reset(self, reason: str, keep: tuple[Depth, ...] = ()) -> ResyncNeeded:
        """Empty the book and wait for a snapshot, buffering ``keep`` (frames a new snapshot may precede)."""
        self._bids.clear()
        self._asks.clear()
        self._last_id = None
        self._bridged = False
        self._buffer.clear()
        self._buffer.extend(keep)
        self._resyncs += 1
        return ResyncNeeded(reason=reason)

    def _apply_levels(self, delta: Depth) -> None:
        # _SideBook.set inlined: this loop is the per-frame hot path (measured in bench/bench_decode.py).
        for side, levels in ((self._bids, delta.bids), (self._asks, delta.asks)):
            sizes = side.sizes
            prices = side.prices
            for price, size in levels:
                if size:
                    if price not in sizes:
                        insort(prices, price)
                    sizes[price] = size
                elif price in sizes:
                    del sizes[price]
                    del prices[bisect_left(prices, price)]
        self._last_id = delta.last_update_id
        self._applied += 1

    def _crossed(self) -> bool:
        bp = self._bids.prices
        ap = self._asks.prices
        return bool(bp) and bool(ap) and bp[-1] >= ap[0]

    # --- inputs -----------------------------------------------------------------------------------------

    def apply_snapshot(self, snapshot: DepthSnapshot) -> BookOutcome:
        """Load a REST snapshot and replay the buffered deltas after it (section 5.2, steps 2-5)."""
        self._bids.load(snapshot.bids)
        self._asks.load(snapshot.asks)
        self._last_id = snapshot.last_update_id
        self._bridged = False
        if self._crossed():
            # The buffered frames are still good stream data for the next snapshot.
            return self._reset(f"snapshot {snapshot.last_update_id} is crossed", keep=tuple(self._buffer))
        pending = [d for d in self._buffer if d.last_update_id > snapshot.last_update_id]
        self._buffer.clear()
        outcome: BookOutcome = Applied(update_id=snapshot.last_update_id)
        for delta in pending:
            outcome = self._continue(delta)
            if isinstance(outcome, ResyncNeeded):
                return outcome
        return outcome

    def apply_delta(self, delta: Depth) -> BookOutcome:
        """Apply one depth frame, or buffer it before the snapshot; never raises."""
        if delta.symbol != self.symbol:
            self._ignored += 1
            return Ignored(reason=f"delta for {delta.symbol}, book is {self.symbol}")
        if self._last_id is None:
            self._buffer.append(delta)
            self._buffered += 1
            return Buffered(pending=len(self._buffer))
        return self._continue(delta)

    def _continue(self, delta: Depth) -> BookOutcome:
        last = self._last_id
        assert last is not None
        first_id = delta.first_update_id
        last_id = delta.last_update_id
        if last_id <= last:
            self._ignored += 1
            return Ignored(reason=f"stale delta {first_id}..{last_id}, book is at {last}")
        if self._bridged:
            if first_id != last + 1:
                kind = "gap" if first_id > last + 1 else "overlap"
                # A frame past a gap is newer than the book; the next snapshot may precede it.
                return self._reset(f"{kind}: delta starts at {first_id}, expected {last + 1}", keep=(delta,))
        elif first_id > last + 1:
            return self._reset(
                f"gap after snapshot: delta starts at {first_id}, snapshot is at {last}", keep=(delta,)
            )
        self._apply_levels(delta)
        self._bridged = True
        if self._crossed():
            return self._reset(f"crossed book after delta {first_id}..{last_id}")
        return Applied(update_id=last_id)

    # --- queries ----------------------------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        prices = self._bids.prices
        if not prices:
            return None
        price = prices[-1]
        return price, self._bids.sizes[price]

    def best_ask(self) -> Level | None:
        prices = self._asks.prices
        if not prices:
            return None
        price = prices[0]
        return price, self._asks.sizes[price]

    def spread(self) -> Decimal | None:
        bid = self.best_bid()
        ask = self.best_ask()
        if bid is None or ask is None:
            return None
        return ask[0] - bid[0]

    def mid(self) -> Decimal | None:
        bid = self.best_bid()
        ask = self.best_ask()
        if bid is None or ask is None:
            return None
        return (ask[0] + bid[0]) / _TWO

    def bids(self, n: int | None = None) -> Levels:
        """Bid levels best (highest) first, at most ``n``."""
        prices = self._bids.prices
        chosen = prices[::-1] if n is None else prices[: -n - 1 : -1] if n > 0 else []
        sizes = self._bids.sizes
        return tuple((p, sizes[p]) for p in chosen)

    def asks(self, n: int | None = None) -> Levels:
        """Ask levels best (lowest) first, at most ``n``."""
        prices = self._asks.prices
        chosen = prices if n is None else prices[: max(n, 0)]
        sizes = self._asks.sizes
        return tuple((p, sizes[p]) for p in chosen)

    def top(self, n: int) -> tuple[Levels, Levels]:
        """The best ``n`` bids and asks, each best first."""
        return self.bids(n), self.asks(n)

    def imbalance(self, n: int = 10) -> Decimal | None:
        """(bid size - ask size) / (bid size + ask size) over the best ``n`` levels; in [-1, 1]."""
        bid_size = sum((s for _, s in self.bids(n)), Decimal(0))
        ask_size = sum((s for _, s in self.asks(n)), Decimal(0))
        total = bid_size + ask_size
        if not total:
            return None
        return (bid_size - ask_size) / total

    def size_within_bps(self, bps: Decimal | int) -> tuple[Decimal, Decimal] | None:
        """Total (bid size, ask size) priced within ``bps`` basis points of the mid; None without a mid."""
        mid = self.mid()
        if mid is None:
            return None
        band = mid * Decimal(bps) / _BPS
        low = mid - band
        high = mid + band
        bid_prices = self._bids.prices
        ask_prices = self._asks.prices
        bid_sizes = self._bids.sizes
        ask_sizes = self._asks.sizes
        bid_total = sum((bid_sizes[p] for p in bid_prices[bisect_left(bid_prices, low) :]), Decimal(0))
        ask_end = bisect_left(ask_prices, high)
        if ask_end < len(ask_prices) and ask_prices[ask_end] == high:
            ask_end += 1
        ask_total = sum((ask_sizes[p] for p in ask_prices[:ask_end]), Decimal(0))
        return bid_total, ask_total

    def average_fill_price(self, side: Side, size: Decimal) -> Decimal | None:
        """Volume-weighted price of taking ``size`` base units (BID buys from asks, ASK sells into bids).

        None when the size is not positive or the book cannot fill it.
        """
        if size <= 0:
            return None
        levels = self._asks if side is Side.BID else self._bids
        prices = levels.prices if side is Side.BID else reversed(levels.prices)
        remaining = size
        cost = Decimal(0)
        for price in prices:
            take = min(remaining, levels.sizes[price])
            cost += take * price
            remaining -= take
            if not remaining:
                return cost / size
        return None

    def slippage_bps(self, side: Side, size: Decimal) -> Decimal | None:
        """How far the average fill is from the mid, in basis points, signed so that worse is positive."""
        mid = self.mid()
        average = self.average_fill_price(side, size)
        if mid is None or average is None or not mid:
            return None
        diff = average - mid if side is Side.BID else mid - average
        return diff / mid * _BPS
