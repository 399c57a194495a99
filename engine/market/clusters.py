"""Liquidation clusters: the liquidation stream folded into price buckets whose weight decays over time.

Pure (time is passed in as exchange milliseconds). Owns, per market, a bounded set of buckets and a window of
recent liquidations. Invariants:

* a bucket's weight is the liquidated notional (price x quantity) decayed by ``0.5 ** (age / half_life)``;
  weights never grow without a new liquidation and are never negative;
* at most ``max_buckets`` buckets are kept (the lightest are dropped first);
* the burst window holds only liquidations inside ``window_ms`` of the newest time seen, so its sum is exact;
* a liquidation order on the ``Ask`` side closes a long (longs were liquidated), on the ``Bid`` side a short.
"""

from __future__ import annotations

import math
from collections import deque
from decimal import Decimal
from typing import Literal

import attrs

__all__ = ["Burst", "Cluster", "ClusterMap"]

Side = Literal["Bid", "Ask"]


@attrs.frozen(kw_only=True)
class Cluster:
    price_lo: Decimal
    price_hi: Decimal
    weight: Decimal  # decayed notional, both sides
    longs_liquidated: Decimal  # decayed notional of Ask-side liquidation orders
    shorts_liquidated: Decimal  # decayed notional of Bid-side liquidation orders
    last_ms: int

    @property
    def mid(self) -> Decimal:
        return (self.price_lo + self.price_hi) / 2


@attrs.frozen(kw_only=True)
class Burst:
    """Liquidated notional inside the window exceeded the threshold."""

    notional: Decimal
    count: int
    window_ms: int
    threshold: Decimal
    as_of_ms: int


@attrs.define
class _Bucket:
    longs: float
    shorts: float
    at_ms: int

    def decayed(self, now_ms: int, half_life_ms: float) -> tuple[float, float]:
        factor = math.pow(0.5, max(0, now_ms - self.at_ms) / half_life_ms)
        return self.longs * factor, self.shorts * factor


class ClusterMap:
    """Buckets and burst window of one market."""

    __slots__ = ("_buckets", "_half_life_ms", "_max_buckets", "_newest_ms", "_recent", "_window_ms",
                 "bucket_size", "threshold", "version")

    def __init__(self, *, bucket_size: Decimal, half_life_s: float, max_buckets: int, window_s: float,
                 threshold: Decimal) -> None:
        if bucket_size <= 0 or half_life_s <= 0 or max_buckets < 1 or window_s <= 0 or threshold <= 0:
            raise ValueError("bucket size, half-life, max buckets, window and threshold must be positive")
        self.bucket_size = bucket_size
        self._half_life_ms = half_life_s * 1000.0
        self._max_buckets = max_buckets
        self._window_ms = int(window_s * 1000)
        self.threshold = threshold
        self._buckets: dict[Decimal, _Bucket] = {}
        self._recent: deque[tuple[int, Decimal]] = deque()
        self._newest_ms = 0
        self.version = 0  # bumped by every accepted liquidation, so a reader can memoize by (version, time)

    def add(self, *, price: Decimal, quantity: Decimal, side: Side, ts_ms: int) -> None:
        """Fold one liquidation in. Non-positive price or quantity is ignored (nothing to weigh)."""
        if not (price.is_finite() and quantity.is_finite()) or price <= 0 or quantity <= 0:
            return
        self.version += 1
        notional = price * quantity
        key = (price // self.bucket_size) * self.bucket_size
        bucket = self._buckets.get(key)
        at = max(ts_ms, bucket.at_ms if bucket else ts_ms)
        if bucket is None:
            bucket = _Bucket(longs=0.0, shorts=0.0, at_ms=at)
            self._buckets[key] = bucket
        else:
            bucket.longs, bucket.shorts = bucket.decayed(at, self._half_life_ms)
            bucket.at_ms = at
        # A late liquidation (older than the bucket's clock) is decayed to the bucket's time before adding.
        weight = float(notional) * math.pow(0.5, max(0, at - ts_ms) / self._half_life_ms)
        if side == "Ask":
            bucket.longs += weight
        else:
            bucket.shorts += weight
        self._newest_ms = max(self._newest_ms, ts_ms)
        self._recent.append((ts_ms, notional))
        self._expire()
        if len(self._buckets) > self._max_buckets:
            self._drop_lightest(self._newest_ms)

    def _expire(self) -> None:
        cutoff = self._newest_ms - self._window_ms
        # Entries may arrive out of order; rebuild when an old one sits behind a newer one.
        if any(ts <= cutoff for ts, _ in self._recent):
            self._recent = deque((ts, n) for ts, n in self._recent if ts > cutoff)

    def _drop_lightest(self, now_ms: int) -> None:
        ranked = sorted(self._buckets, key=lambda k: sum(self._buckets[k].decayed(now_ms, self._half_life_ms)))
        for key in ranked[: len(self._buckets) - self._max_buckets]:
            del self._buckets[key]

    @property
    def empty(self) -> bool:
        """True when nothing was ever folded in (or all of it expired): no clusters and no burst at any time."""
        return not self._buckets and not self._recent

    def clusters(self, now_ms: int) -> tuple[Cluster, ...]:
        """Every bucket with its weight at ``now_ms``, heaviest first."""
        out = []
        for key, bucket in self._buckets.items():
            longs, shorts = bucket.decayed(now_ms, self._half_life_ms)
            out.append(Cluster(
                price_lo=key, price_hi=key + self.bucket_size,
                weight=Decimal(repr(longs + shorts)), longs_liquidated=Decimal(repr(longs)),
                shorts_liquidated=Decimal(repr(shorts)), last_ms=bucket.at_ms,
            ))
        out.sort(key=lambda c: (-c.weight, c.price_lo))
        return tuple(out)

    def near(self, price: Decimal, *, within_bps: Decimal, now_ms: int, top: int = 5) -> tuple[Cluster, ...]:
        """The ``top`` heaviest clusters whose range comes within ``within_bps`` of ``price``."""
        reach = price * within_bps / Decimal(10000)
        lo, hi = price - reach, price + reach
        return tuple(c for c in self.clusters(now_ms) if c.price_hi > lo and c.price_lo <= hi)[:top]

    def burst(self, now_ms: int) -> Burst | None:
        """A burst alert when the notional liquidated in the window ending at ``now_ms`` exceeds the threshold."""
        cutoff = now_ms - self._window_ms
        inside = [n for ts, n in self._recent if cutoff < ts <= now_ms]
        total = sum(inside, Decimal(0))
        if total <= self.threshold:
            return None
        return Burst(notional=total, count=len(inside), window_ms=self._window_ms, threshold=self.threshold,
                     as_of_ms=now_ms)
