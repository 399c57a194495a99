"""The replayed price path and the simulated crowd of leveraged traders.

Owns:

* :class:`PricePath` - the intra-candle path model. Every candle becomes ``ticks_per_candle`` evenly spaced
  ticks (every 5 s for 1m candles) that visit the candle's vertices in order: ``O -> L -> H -> C`` for an up
  (or flat) candle and ``O -> H -> L -> C`` for a down candle (the usual "the wick against the move came
  first" assumption). The ``ticks_per_candle - 1`` steps are shared between the three legs in proportion
  to their length (each non-empty leg gets at least one step, largest remainder for the rest) and points
  inside a leg are linearly interpolated and rounded to the tick. So the path touches O, H, L and C
  exactly, the first tick is O and the last is C, and the max/min over a candle's ticks are H/L.
* The perpetual premium model: ``premium(i) = clamp(0.05 * r_1h, -0.1 %, +0.1 %) + 0.002 %`` where
  ``r_1h`` is the return of candle ``i``'s close over the close one hour earlier: perps trade rich in
  rallies and cheap in sell-offs, and the quiet-market funding estimate comes out at ``0.0000125``.
* :class:`LiquidationCrowd` - seeded simulated accounts opened along the past path (two per candle,
  leverage 5-50x, sizes 0.001-3 BTC, exponential lifetimes around 12 h) whose liquidation prices the path
  crosses; liquidations therefore cluster below recent highs and above recent lows, as in real markets.

Invariants: everything is a pure function of the candle series and the seed; nothing reads a clock.
"""

from __future__ import annotations

import heapq
import random
from decimal import Decimal

import attrs

from engine.sim.marketdata import CandleSeries

__all__ = ["CrowdLiquidation", "LiquidationCrowd", "PricePath", "leg_steps"]

_HOUR_MS = 3_600_000


def leg_steps(dists: list[int], total: int) -> list[int]:
    """Split ``total`` steps over legs of the given lengths: >= 1 per non-empty leg, rest by size."""
    nonzero = [i for i, d in enumerate(dists) if d > 0]
    steps = [0] * len(dists)
    if not nonzero:
        return steps
    for i in nonzero:
        steps[i] = 1
    rest = total - len(nonzero)
    whole = sum(dists)
    shares = [(dists[i] * rest / whole, i) for i in nonzero]
    given = 0
    for share, i in shares:
        steps[i] += int(share)
        given += int(share)
    for _frac, i in sorted(((s - int(s), i) for s, i in shares), reverse=True)[: rest - given]:
        steps[i] += 1
    return steps


class PricePath:
    """Tick path over a candle series (historical time axis, ms; prices in integer ticks)."""

    def __init__(self, series: CandleSeries, *, ticks_per_candle: int = 12) -> None:
        if ticks_per_candle < 4:
            raise ValueError(f"ticks_per_candle must be >= 4; got {ticks_per_candle}")
        self.series = series
        self.ticks_per_candle = ticks_per_candle
        self.tick_ms = series.interval_ms // ticks_per_candle
        self._cache: dict[int, list[int]] = {}
        closes = series.closes
        times = series.times
        prem: list[float] = []
        j = 0
        for i, t in enumerate(times):
            while times[j] < t - _HOUR_MS:
                j += 1
            r = closes[i] / closes[j] - 1.0
            prem.append(round(min(0.001, max(-0.001, 0.05 * r)) + 0.00002, 8))
        self._premium = prem

    @property
    def first_ms(self) -> int:
        return self.series.times[0]

    @property
    def last_ms(self) -> int:
        """Historical time of the last tick of the series."""
        return self.series.times[-1] + (self.ticks_per_candle - 1) * self.tick_ms

    def ticks(self, i: int) -> list[int]:
        """The tick prices of candle ``i`` (length ``ticks_per_candle``)."""
        got = self._cache.get(i)
        if got is not None:
            return got
        s = self.series
        o, h, lo, c = s.opens[i], s.highs[i], s.lows[i], s.closes[i]
        verts = [o, lo, h, c] if c >= o else [o, h, lo, c]
        steps = leg_steps([abs(verts[k + 1] - verts[k]) for k in range(3)], self.ticks_per_candle - 1)
        out = [o]
        for k in range(3):
            n = steps[k]
            a, b = verts[k], verts[k + 1]
            for j in range(1, n + 1):
                out.append(a + round((b - a) * j / n))
        while len(out) < self.ticks_per_candle:  # flat candle or legs of zero length
            out.append(c)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[i] = out
        return out

    def premium(self, i: int) -> float:
        return self._premium[i]

    def premium_dec(self, i: int) -> Decimal:
        return Decimal(repr(self._premium[i]))

    def perp_ticks(self, price_ticks: int, i: int) -> int:
        return round(price_ticks * (1.0 + self._premium[i]))

    def locate(self, t_ms: int) -> tuple[int, int]:
        """(candle index, tick index) of the last tick at or before ``t_ms``; (-1, -1) before the start."""
        i = self.series.index_at_or_before(t_ms)
        if i < 0:
            return -1, -1
        k = min(self.ticks_per_candle - 1, (t_ms - self.series.times[i]) // self.tick_ms)
        return i, k

    def tick_time(self, i: int, k: int) -> int:
        return self.series.times[i] + k * self.tick_ms


@attrs.frozen(kw_only=True)
class CrowdLiquidation:
    """One simulated account's forced close: ``side`` is the liquidation order's side."""

    side: str  # "Ask" closes a long, "Bid" closes a short
    qty_steps: int
    account_id: int


class LiquidationCrowd:
    """Seeded population of leveraged accounts on the perp; see the module docstring."""

    LEVERAGES = (5, 10, 20, 25, 50)
    WEIGHTS = (3, 4, 3, 2, 1)
    MMF = 0.0067

    def __init__(self, seed: int, *, per_candle: int = 2, mean_life_ms: int = 12 * _HOUR_MS) -> None:
        self.seed = seed
        self.per_candle = per_candle
        self.mean_life_ms = mean_life_ms
        self._longs: list[tuple[int, int]] = []  # (-liq_ticks, id): liquidated when price <= liq
        self._shorts: list[tuple[int, int]] = []  # (liq_ticks, id): liquidated when price >= liq
        self._expiry: list[tuple[int, int]] = []
        self._alive: dict[int, tuple[int, int]] = {}  # id -> (signed qty steps, expiry)
        self._next_id = 1
        self.long_steps = 0
        self.short_steps = 0

    def spawn(self, t_ms: int, entry_ticks: int) -> None:
        """Open this candle's new accounts at ``entry_ticks`` (deterministic in seed and time)."""
        rng = random.Random(self.seed * 1_000_003 + t_ms)
        for _ in range(self.per_candle):
            lev = rng.choices(self.LEVERAGES, self.WEIGHTS)[0]
            qty = max(1, int(10 ** rng.uniform(2.0, 5.5)))
            life = max(600_000, int(rng.expovariate(1.0 / self.mean_life_ms)))
            aid = self._next_id
            self._next_id += 1
            if rng.random() < 0.5:
                liq = int(entry_ticks * (1.0 - 1.0 / lev + self.MMF))
                heapq.heappush(self._longs, (-liq, aid))
                self._alive[aid] = (qty, t_ms + life)
                self.long_steps += qty
            else:
                liq = int(entry_ticks * (1.0 + 1.0 / lev - self.MMF)) + 1
                heapq.heappush(self._shorts, (liq, aid))
                self._alive[aid] = (-qty, t_ms + life)
                self.short_steps += qty
            heapq.heappush(self._expiry, (t_ms + life, aid))

    def expire(self, t_ms: int) -> None:
        """Close (quietly) every account whose lifetime ended by ``t_ms``."""
        while self._expiry and self._expiry[0][0] <= t_ms:
            _, aid = heapq.heappop(self._expiry)
            self._drop(aid)

    def _drop(self, aid: int) -> tuple[int, int] | None:
        got = self._alive.pop(aid, None)
        if got is not None:
            if got[0] > 0:
                self.long_steps -= got[0]
            else:
                self.short_steps += got[0]
        return got

    def _clean_tops(self) -> None:
        while self._longs and self._longs[0][1] not in self._alive:
            heapq.heappop(self._longs)
        while self._shorts and self._shorts[0][1] not in self._alive:
            heapq.heappop(self._shorts)

    def thresholds(self) -> tuple[int | None, int | None]:
        """(highest long liquidation price, lowest short liquidation price) among live accounts."""
        self._clean_tops()
        hi = -self._longs[0][0] if self._longs else None
        lo = self._shorts[0][0] if self._shorts else None
        return hi, lo

    def crossed(self, price_ticks: int) -> list[CrowdLiquidation]:
        """Pop and return every live account the price ``price_ticks`` liquidates."""
        out: list[CrowdLiquidation] = []
        while self._longs and -self._longs[0][0] >= price_ticks:
            _, aid = heapq.heappop(self._longs)
            got = self._drop(aid)
            if got is not None:
                out.append(CrowdLiquidation(side="Ask", qty_steps=got[0], account_id=aid))
        while self._shorts and self._shorts[0][0] <= price_ticks:
            _, aid = heapq.heappop(self._shorts)
            got = self._drop(aid)
            if got is not None:
                out.append(CrowdLiquidation(side="Bid", qty_steps=-got[0], account_id=aid))
        return out

    def open_interest_steps(self) -> int:
        """Open interest contributed by the crowd (one side's worth: mean of long and short totals)."""
        return (self.long_steps + self.short_steps) // 2
