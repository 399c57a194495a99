"""Request rate limits of the simulated exchange (pure: the caller passes the time in seconds).

Two token buckets per client: the general one (``per_minute`` requests per minute, per API key, or per client IP
for unsigned requests) and a stricter one for history-type endpoints (klines, trades/history). A history request
takes a token from both. Invariants: a bucket never holds more than its capacity nor fewer than zero tokens; the
number of tracked clients is bounded (the least recently used one is forgotten, which can only make the limiter
more lenient, never stricter).
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

__all__ = ["RateLimiter", "RateLimiterStats", "TokenBucket"]


@attrs.define
class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``capacity`` per ``period_s``."""

    capacity: float
    period_s: float
    tokens: float
    updated_s: float

    @classmethod
    def full(cls, capacity: float, period_s: float, now_s: float) -> TokenBucket:
        return cls(capacity=capacity, period_s=period_s, tokens=capacity, updated_s=now_s)

    def _refill(self, now_s: float) -> None:
        if now_s > self.updated_s:
            rate = self.capacity / self.period_s
            self.tokens = min(self.capacity, self.tokens + (now_s - self.updated_s) * rate)
            self.updated_s = now_s

    def available(self, now_s: float) -> float:
        self._refill(now_s)
        return self.tokens

    def take(self, now_s: float) -> None:
        """Consume one token; the caller checked ``available`` first."""
        self._refill(now_s)
        self.tokens = max(0.0, self.tokens - 1.0)


@attrs.frozen(kw_only=True)
class RateLimiterStats:
    allowed: int
    limited: int
    limited_history: int
    tracked_clients: int


class RateLimiter:
    """Decides whether one more request from ``client`` is allowed at ``now_s``."""

    def __init__(self, *, per_minute: int, history_per_minute: int, max_clients: int = 10_000) -> None:
        if per_minute < 1 or history_per_minute < 1:
            raise ValueError(f"limits must be >= 1; got {per_minute}, {history_per_minute}")
        self.per_minute = per_minute
        self.history_per_minute = history_per_minute
        self._max_clients = max_clients
        self._buckets: OrderedDict[tuple[str, bool], TokenBucket] = OrderedDict()
        self._allowed = 0
        self._limited = 0
        self._limited_history = 0

    def _bucket(self, client: str, history: bool, now_s: float) -> TokenBucket:
        key = (client, history)
        bucket = self._buckets.get(key)
        if bucket is None:
            capacity = self.history_per_minute if history else self.per_minute
            bucket = TokenBucket.full(float(capacity), 60.0, now_s)
            self._buckets[key] = bucket
            while len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def allow(self, client: str, *, history: bool, now_s: float) -> bool:
        """True (and a token taken) when the request may proceed; False means answer 429."""
        general = self._bucket(client, False, now_s)
        special = self._bucket(client, True, now_s) if history else None
        if general.available(now_s) < 1.0:
            self._limited += 1
            return False
        if special is not None and special.available(now_s) < 1.0:
            self._limited += 1
            self._limited_history += 1
            return False
        general.take(now_s)
        if special is not None:
            special.take(now_s)
        self._allowed += 1
        return True

    def statistics(self) -> RateLimiterStats:
        return RateLimiterStats(allowed=self._allowed, limited=self._limited,
                                limited_history=self._limited_history, tracked_clients=len(self._buckets))
