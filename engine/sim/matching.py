"""Order book of one simulated market: synthetic liquidity around the price path plus users' resting orders.

Owns: the :class:`Order` record (mutable engine state, never sent as is), the deterministic synthetic book
model, the per-market book (:class:`Book`) with its published depth state and its update-id counter, and
:meth:`Book.plan_take` which walks the book for a taker without mutating anything.

Synthetic book model (deterministic in ``seed``, the centre price and the path tick counter):

* best bid = centre - 1 - b, best ask = centre + 1 + a (ticks) with a, b in {0, 1} from a hash of the tick
  counter, so the path price is always strictly inside the spread;
* ``levels`` occupied prices per side counted outwards from the best price; whether a price is occupied
  (5 in 8 are) and its size are hashes of the price, so levels stay put while the price drifts and a path
  move changes only the levels near the top and at the far edge, like a real book;
* the top three levels get extra size noise each path tick (so the top of book flickers);
* liquidity a taker consumed stays consumed until the next path tick refills the book.

Invariants: bids are strictly below asks in the published book; ``published_*`` is exactly the state a
client rebuilds from ``depth()`` plus the depth frames emitted since (one id per frame, ``U = previous u + 1``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs

from engine.sim.markets import MarketSpec

__all__ = ["Book", "Order", "PlannedFill", "mix"]

_MASK = (1 << 64) - 1


def mix(*parts: int) -> int:
    """splitmix64 over the parts: a fast deterministic hash for book sizes."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (p & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK
        x ^= x >> 31
    return x


@attrs.define(kw_only=True, eq=False)
class Order:
    """One order's engine state (quantities in steps, prices in ticks, money in Decimal)."""

    id: str
    account: str
    symbol: str
    side: str  # "Bid" | "Ask"
    order_type: str  # "Limit" | "Market"
    tif: str
    price: int | None
    qty: int | None  # None for a market order sized by quoteQuantity
    quote_qty: Decimal | None
    post_only: bool
    reduce_only: bool
    client_id: int | None
    stp: str
    created_us: int
    seq: int
    status: str = "New"
    executed: int = 0
    executed_quote: Decimal = Decimal(0)
    expiry_reason: str | None = None
    locked_asset: str | None = None
    locked: Decimal = Decimal(0)  # amount still reserved for this order
    quote_cap: Decimal | None = None  # a market order's derived quote notional (wire ``Q``)
    origin: str = "USER"
    system_order_type: str | None = None

    @property
    def remaining(self) -> int:
        return 0 if self.qty is None else self.qty - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in ("New", "PartiallyFilled")


@attrs.frozen(kw_only=True)
class PlannedFill:
    """One match a taker would make: at ``price`` for ``qty`` against ``maker`` (None = synthetic flow)."""

    price: int
    qty: int
    maker: Order | None


class Book:
    """One market's book; see the module docstring."""

    def __init__(self, spec: MarketSpec, *, seed: int, salt: int, levels: int, first_update_id: int) -> None:
        self.spec = spec
        self.seed = seed
        self.salt = salt
        self.levels = levels
        self.center = 0
        self.phase = 0
        self.update_id = first_update_id
        self.updated_us = 0
        self.published_bids: dict[int, int] = {}
        self.published_asks: dict[int, int] = {}
        self.top: tuple[int | None, int | None, int | None, int | None] = (None, None, None, None)
        self._consumed: dict[int, int] = {}
        self._synth_bids: dict[int, int] = {}
        self._synth_asks: dict[int, int] = {}
        self._base_sizes: dict[int, int] = {}
        self._price_texts: dict[int, str] = {}
        # user orders: price -> FIFO list; sorted price lists for best-price lookups
        self.user_bids: dict[int, list[Order]] = {}
        self.user_asks: dict[int, list[Order]] = {}
        self._bid_prices: list[int] = []
        self._ask_prices: list[int] = []
        self.dirty = True

    # ----- synthetic liquidity -----------------------------------------------------------------------

    def move(self, center: int, phase: int) -> None:
        """Re-centre the synthetic book on the path price (refills consumed liquidity)."""
        if center == self.center and phase == self.phase:
            return
        self.center = center
        self.phase = phase
        self._consumed.clear()
        h = mix(self.seed, self.salt, phase)
        bid0 = center - 1 - (h & 1)
        ask0 = center + 1 + ((h >> 1) & 1)
        self._synth_bids = self._side(bid0, -1, phase)
        self._synth_asks = self._side(ask0, 1, phase)
        self.dirty = True

    def _side(self, best: int, direction: int, phase: int) -> dict[int, int]:
        """``levels`` occupied prices from ``best`` outwards; occupancy and size are functions of the price."""
        out: dict[int, int] = {}
        p = best
        depth = 0
        while depth < self.levels and p > 0:
            base = self._base(p)
            if base or depth == 0:
                size = base or self._fallback(p)
                if depth < 3:
                    size = max(1, size * (50 + mix(self.seed, p, phase) % 100) // 100)
                out[p] = size
                depth += 1
            p += direction
        return out

    def _base(self, price: int) -> int:
        """Resting synthetic size at ``price`` (0 = empty price), deterministic in seed and price."""
        got = self._base_sizes.get(price)
        if got is None:
            if len(self._base_sizes) > 50_000:
                self._base_sizes.clear()
            h = mix(self.seed, self.salt, price)
            got = 0 if h % 8 >= 5 else (5 + (h >> 3) % 196) * 500 + (h >> 20) % 997
            self._base_sizes[price] = got
        return got

    def _fallback(self, price: int) -> int:
        h = mix(self.seed, self.salt, price, 1)
        return (5 + h % 96) * 500 + (h >> 20) % 997

    def synthetic(self, side: str) -> dict[int, int]:
        """Current synthetic liquidity on ``side`` (``"Bid"``/``"Ask"``), net of what takers consumed."""
        base = self._synth_bids if side == "Bid" else self._synth_asks
        if not self._consumed:
            return base
        return {p: s - self._consumed.get(p, 0) for p, s in base.items() if s - self._consumed.get(p, 0) > 0}

    def consume(self, price: int, qty: int) -> None:
        self._consumed[price] = self._consumed.get(price, 0) + qty
        self.dirty = True

    # ----- user orders -------------------------------------------------------------------------------

    def add(self, order: Order) -> None:
        assert order.price is not None
        book, prices = (self.user_bids, self._bid_prices) if order.side == "Bid" else (self.user_asks, self._ask_prices)
        queue = book.get(order.price)
        if queue is None:
            book[order.price] = [order]
            bisect.insort(prices, order.price)
        else:
            queue.append(order)
        self.dirty = True

    def remove(self, order: Order) -> None:
        assert order.price is not None
        book, prices = (self.user_bids, self._bid_prices) if order.side == "Bid" else (self.user_asks, self._ask_prices)
        queue = book.get(order.price)
        if queue is None or order not in queue:
            return
        queue.remove(order)
        if not queue:
            del book[order.price]
            prices.pop(bisect.bisect_left(prices, order.price))
        self.dirty = True

    def best_user_bid(self) -> int | None:
        return self._bid_prices[-1] if self._bid_prices else None

    def best_user_ask(self) -> int | None:
        return self._ask_prices[0] if self._ask_prices else None

    def user_orders_between(self, lo: int, hi: int) -> bool:
        """True if any resting user order has a price in ``[lo, hi]``."""
        for prices in (self._bid_prices, self._ask_prices):
            i = bisect.bisect_left(prices, lo)
            if i < len(prices) and prices[i] <= hi:
                return True
        return False

    def crossed_by(self, price: int) -> list[Order]:
        """Resting orders a path trade at ``price`` fills: bids at or above it, asks at or below it."""
        out: list[Order] = []
        i = bisect.bisect_left(self._bid_prices, price)
        for p in reversed(self._bid_prices[i:]):
            out.extend(self.user_bids[p])
        j = bisect.bisect_right(self._ask_prices, price)
        for p in self._ask_prices[:j]:
            out.extend(self.user_asks[p])
        return out

    # ----- taker walk --------------------------------------------------------------------------------

    def _opposite_levels(self, taker_side: str) -> Iterator[tuple[int, int, list[Order]]]:
        """(price, synthetic size, user orders) on the side a taker hits, best first."""
        if taker_side == "Bid":
            synth = self.synthetic("Ask")
            users = self.user_asks
            prices = sorted(set(synth) | set(users))
        else:
            synth = self.synthetic("Bid")
            users = self.user_bids
            prices = sorted(set(synth) | set(users), reverse=True)
        for p in prices:
            yield p, synth.get(p, 0), users.get(p, [])

    def plan_take(self, *, side: str, account: str, limit: int | None, qty: int | None,
                  quote_budget: Decimal | None, stp: str) -> tuple[list[PlannedFill], str | None, list[Order]]:
        """Walk the opposite side without mutating: (fills, stop reason, makers STP cancels).

        ``limit`` bounds the price (a limit order's price, or a market order's impact band). The stop reason
        is ``"SelfTradePrevention"`` when the walk stopped at the taker's own order, else None.
        """
        fills: list[PlannedFill] = []
        stp_cancels: list[Order] = []
        left = qty
        budget = quote_budget
        tick = self.spec.tick
        step = self.spec.step
        for price, synth, users in self._opposite_levels(side):
            if limit is not None and ((side == "Bid" and price > limit) or (side == "Ask" and price < limit)):
                break
            makers: list[tuple[int, Order | None]] = []
            if synth > 0:
                makers.append((synth, None))
            makers.extend((o.remaining, o) for o in users)
            for avail, maker in makers:
                if maker is not None and maker.account == account and stp != "Allow":
                    if stp in ("RejectMaker", "RejectBoth"):
                        stp_cancels.append(maker)
                    if stp in ("RejectTaker", "RejectBoth"):
                        return fills, "SelfTradePrevention", stp_cancels
                    continue
                take = avail if left is None else min(avail, left)
                if budget is not None:
                    unit = tick * price * step
                    affordable = int(budget / unit)
                    take = min(take, affordable)
                if take <= 0:
                    return fills, None, stp_cancels
                fills.append(PlannedFill(price=price, qty=take, maker=maker))
                if left is not None:
                    left -= take
                    if left == 0:
                        return fills, None, stp_cancels
                if budget is not None:
                    budget -= tick * price * step * take
        return fills, None, stp_cancels

    # ----- publishing --------------------------------------------------------------------------------

    def target(self) -> tuple[dict[int, int], dict[int, int]]:
        """The book a client should see now: synthetic plus resting user quantity per price."""
        bids = dict(self.synthetic("Bid"))
        asks = dict(self.synthetic("Ask"))
        for p, queue in self.user_bids.items():
            bids[p] = bids.get(p, 0) + sum(o.remaining for o in queue)
        for p, queue in self.user_asks.items():
            asks[p] = asks.get(p, 0) + sum(o.remaining for o in queue)
        return bids, asks

    def publish(self, now_us: int) -> list[tuple[str, dict[str, Any]]]:
        """Diff the target book against what was published; (stream, payload) for depth and bookTicker."""
        if not self.dirty:
            return []
        self.dirty = False
        bids, asks = self.target()
        db = _diff(self.published_bids, bids)
        da = _diff(self.published_asks, asks)
        if not db and not da:
            return []
        self.published_bids = bids
        self.published_asks = asks
        self.update_id += 1
        self.updated_us = now_us
        spec = self.spec
        sym = spec.symbol
        wp, wq = self._wire_price, spec.wire_qty
        out: list[tuple[str, dict[str, Any]]] = [(f"depth.{sym}", {
            "e": "depth", "E": now_us, "s": sym,
            "a": [[wp(p), wq(q)] for p, q in sorted(da)],
            "b": [[wp(p), wq(q)] for p, q in sorted(db)],
            "U": self.update_id, "u": self.update_id, "T": now_us,
        })]
        bb = max(bids) if bids else None
        ba = min(asks) if asks else None
        top = (bb, bids[bb] if bb is not None else None, ba, asks[ba] if ba is not None else None)
        if top != self.top:
            self.top = top
            out.append((f"bookTicker.{sym}", {
                "e": "bookTicker", "E": now_us, "s": sym,
                "a": None if ba is None else spec.wire_price(ba),
                "A": None if ba is None else spec.wire_qty(asks[ba]),
                "b": None if bb is None else spec.wire_price(bb),
                "B": None if bb is None else spec.wire_qty(bids[bb]),
                "u": self.update_id, "T": now_us,
            }))
        return out

    def _wire_price(self, ticks: int) -> str:
        got = self._price_texts.get(ticks)
        if got is None:
            if len(self._price_texts) > 100_000:
                self._price_texts.clear()
            got = self._price_texts[ticks] = self.spec.wire_price(ticks)
        return got

    def snapshot(self, limit: int) -> dict[str, Any]:
        """REST ``/depth``: both sides ascending (best ask first, best bid last), unpadded decimals."""
        spec = self.spec
        bids = sorted(self.published_bids.items(), reverse=True)[:limit]
        asks = sorted(self.published_asks.items())[:limit]

        def text(p: int, q: int) -> list[str]:
            return [_plain(spec.tick * p), _plain(spec.step * q)]

        return {
            "asks": [text(p, q) for p, q in asks],
            "bids": [text(p, q) for p, q in reversed(bids)],
            "lastUpdateId": str(self.update_id),
            "timestamp": self.updated_us,
        }


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _diff(old: dict[int, int], new: dict[int, int]) -> list[tuple[int, int]]:
    changes = [(p, q) for p, q in new.items() if old.get(p) != q]
    changes.extend((p, 0) for p in old if p not in new)
    return changes
