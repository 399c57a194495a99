"""Restart backoff maths (pure: no trio, no clock, randomness injected).

Invariants, checked by property tests:

* attempt 0 (the first retry) is immediate: ``delay(0, rng) == 0.0``;
* for attempt ``n >= 1`` the delay is drawn uniformly from ``[0, upper(n)]`` ("full jitter"), where
  ``upper(n) = min(max_s, initial_s * factor ** (n - 1))``;
* ``0 <= delay(n, rng) <= upper(n) <= max_s`` and ``upper`` is non-decreasing in ``n``.

Full jitter (rather than a fixed +/- fraction) spreads the reconnects of many engines, or many streams of one
engine, across the whole window, which is what avoids a thundering herd after an exchange-wide outage.
"""

from __future__ import annotations

import random

import attrs

from engine.confspec import greater_than, in_range

__all__ = ["Backoff"]


def _at_least_initial(inst: Backoff, _attr: attrs.Attribute[float], value: float) -> None:
    if value < inst.initial_s:
        raise ValueError(f"must be >= initial_s ({inst.initial_s}); got {value}")


@attrs.frozen(kw_only=True)
class Backoff:
    """Capped exponential backoff with full jitter: a pure value, safe to share between actors."""

    initial_s: float = attrs.field(default=0.5, validator=greater_than(0))
    max_s: float = attrs.field(default=30.0, validator=[greater_than(0), _at_least_initial])
    factor: float = attrs.field(default=2.0, validator=in_range(1, None))

    def upper(self, attempt: int) -> float:
        """The largest delay ``delay(attempt, ...)`` can return (0.0 for attempt 0)."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0; got {attempt}")
        if attempt == 0:
            return 0.0
        try:
            raw = self.initial_s * self.factor ** (attempt - 1)
        except OverflowError:
            # A huge attempt number only means "long past the cap"; it must not crash the supervisor.
            return self.max_s
        return min(self.max_s, raw)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): uniform in ``[0, upper(attempt)]``.

        Exactly one draw from ``rng`` per call with ``attempt >= 1`` and none for attempt 0, so a seeded
        ``random.Random`` makes a whole restart schedule reproducible.
        """
        cap = self.upper(attempt)
        if cap == 0.0:
            return 0.0
        # random() is in [0, 1), so the product never exceeds the cap (rounding can at most reach it).
        return cap * rng.random()
