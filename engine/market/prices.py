"""Price priority as a pure object: which price may the strategy see, from where, and how old.

Owns, per market and price kind (``last`` trade price, book ``mid``, ``mark`` price), the newest value seen
from each source (``ws`` and ``rest``) with its exchange time and receive time. Time is passed in (seconds
on the caller's monotonic clock, the trio clock in the actors); nothing here reads a clock.

Rule 1 (never invent a price): :meth:`PriceBoard.quote` returns a :class:`Price` only by copying a value that
was recorded and is inside its source's freshness limit; otherwise it returns a :class:`Stale` status that
carries no number at all. Priority: a live WebSocket value (age <= ws_fresh_s) > the last WebSocket value
still inside cache_max_age_s (reported ``cached``) > a REST fallback value inside rest_max_age_s.

Rule 2 (no time travel): a value older, by exchange time, than the one already held for the same source is
ignored, so a late or replayed frame cannot roll the price back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import attrs

__all__ = [
    "PRICE_KINDS",
    "Price",
    "PriceBoard",
    "PriceKind",
    "PriceLimits",
    "Quote",
    "Source",
    "Stale",
    "Tick",
]

Source = Literal["ws", "rest"]
PriceKind = Literal["last", "mid", "mark"]
PRICE_KINDS: tuple[PriceKind, ...] = ("last", "mid", "mark")


@attrs.frozen(kw_only=True)
class Price:
    """A usable price: the recorded value, where it came from and how old it is."""

    value: Decimal
    source: Source
    age_s: float
    cached: bool  # True when the WebSocket value is past its live limit but inside the cache limit
    exchange_ms: int | None


@attrs.frozen(kw_only=True)
class Stale:
    """No usable price. Deliberately carries no value: callers cannot trade on it by accident."""

    reason: str
    age_s: float | None  # age of the newest value ever seen, None when nothing was ever seen


Quote = Price | Stale


@attrs.frozen(kw_only=True)
class PriceLimits:
    ws_fresh_s: float
    cache_max_age_s: float
    rest_max_age_s: float

    def __attrs_post_init__(self) -> None:
        if not 0 < self.ws_fresh_s <= self.cache_max_age_s or self.rest_max_age_s <= 0:
            raise ValueError(f"limits must satisfy 0 < ws_fresh_s <= cache_max_age_s, rest > 0; got {self}")


@attrs.frozen(kw_only=True)
class Tick:
    """One recorded value."""

    value: Decimal
    source: Source
    exchange_ms: int | None
    recv_s: float


def _valid(value: Decimal) -> bool:
    return value.is_finite() and value > 0


class PriceBoard:
    """Latest value per (market, kind, source) and the priority rule that turns them into a quote."""

    __slots__ = ("_limits", "_never", "_seen", "_ticks")

    def __init__(self, limits: PriceLimits | dict[PriceKind, PriceLimits]) -> None:
        if isinstance(limits, PriceLimits):
            limits = dict.fromkeys(PRICE_KINDS, limits)
        self._limits: dict[PriceKind, PriceLimits] = dict(limits)
        self._ticks: dict[tuple[str, PriceKind, Source], Tick] = {}
        # A never-seen price's status does not depend on time, so one frozen instance per key is reused.
        self._never: dict[tuple[str, PriceKind], Stale] = {}
        self._seen: dict[str, set[PriceKind]] = {}  # kinds with at least one recorded value, per market

    def record(
        self,
        market: str,
        kind: PriceKind,
        *,
        value: Decimal,
        source: Source,
        recv_s: float,
        exchange_ms: int | None = None,
    ) -> bool:
        """Record a value; returns False (and keeps the old one) for a non-positive value or a late frame."""
        if not _valid(value):
            return False
        key = (market, kind, source)
        old = self._ticks.get(key)
        if old is not None:
            if exchange_ms is not None and old.exchange_ms is not None and exchange_ms < old.exchange_ms:
                return False
            if exchange_ms is None and recv_s < old.recv_s:
                return False
        self._ticks[key] = Tick(value=value, source=source, exchange_ms=exchange_ms, recv_s=recv_s)
        seen = self._seen.get(market)
        if seen is None:
            self._seen[market] = {kind}
        else:
            seen.add(kind)
        return True

    def latest(self, market: str, kind: PriceKind, source: Source) -> Tick | None:
        return self._ticks.get((market, kind, source))

    def ws_age(self, market: str, kind: PriceKind, now_s: float) -> float | None:
        """Age of the newest WebSocket value, None if there never was one."""
        tick = self._ticks.get((market, kind, "ws"))
        return None if tick is None else max(0.0, now_s - tick.recv_s)

    def ws_live(self, market: str, kind: PriceKind, now_s: float) -> bool:
        age = self.ws_age(market, kind, now_s)
        return age is not None and age <= self._limits[kind].ws_fresh_s

    def quotes(self, market: str, now_s: float) -> tuple[Quote, Quote, Quote]:
        """``quote`` for every kind in ``PRICE_KINDS`` order (last, mid, mark), skipping never-seen kinds cheaply."""
        seen = self._seen.get(market, ())
        last, mid, mark = PRICE_KINDS
        return (self.quote(market, last, now_s) if last in seen else self._never_seen(market, last),
                self.quote(market, mid, now_s) if mid in seen else self._never_seen(market, mid),
                self.quote(market, mark, now_s) if mark in seen else self._never_seen(market, mark))

    def _never_seen(self, market: str, kind: PriceKind) -> Stale:
        never = self._never.get((market, kind))
        if never is None:
            never = self._never[(market, kind)] = Stale(reason=f"no {kind} price received for {market}", age_s=None)
        return never

    def quote(self, market: str, kind: PriceKind, now_s: float) -> Quote:
        """The best usable price by the priority rule, or a Stale status."""
        limits = self._limits[kind]
        ws = self._ticks.get((market, kind, "ws"))
        rest = self._ticks.get((market, kind, "rest"))
        if ws is not None:
            age = max(0.0, now_s - ws.recv_s)
            if age <= limits.cache_max_age_s:
                return Price(
                    value=ws.value, source="ws", age_s=age, cached=age > limits.ws_fresh_s,
                    exchange_ms=ws.exchange_ms,
                )
        if rest is not None:
            age = max(0.0, now_s - rest.recv_s)
            if age <= limits.rest_max_age_s:
                return Price(value=rest.value, source="rest", age_s=age, cached=False, exchange_ms=rest.exchange_ms)
        if ws is None and rest is None:
            return self._never_seen(market, kind)
        newest = min(max(0.0, now_s - t.recv_s) for t in (ws, rest) if t is not None)
        return Stale(reason=f"{kind} price for {market} is {newest:.1f}s old, past every freshness limit",
                     age_s=newest)
