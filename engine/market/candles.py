"""Multi-timeframe candles from the kline stream and REST backfill (pure: time is passed in).

Owns, per timeframe, a bounded map from bar start to :class:`Candle`. Invariants:

* one candle per start (no duplicates); starts are aligned to the timeframe (UTC epoch multiples);
* a candle is *closed* when its end has passed (``end_ms <= now_ms``) or the exchange marked it final;
  :meth:`CandleSeries.closed` returns only closed candles, oldest first;
* a final candle is never replaced by a non-final frame, and among non-final frames the one with the
  newest event time wins, so out-of-order and repeated frames cannot roll a bar back;
* buckets the exchange reports as empty (null OHLC) are remembered as empty, never given an invented price;
* missing bars between the retained window and the last closed bar are reported by :meth:`CandleSeries.gaps`
  as start/end ranges for REST backfill; backfilled bars fill them;
* history holds at most ``max_bars`` bars per timeframe (the newest).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from decimal import Decimal

import attrs

__all__ = [
    "INTERVAL_MS",
    "Candle",
    "CandleBook",
    "CandleSeries",
    "Gap",
    "Outcome",
    "interval_ms",
]

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}


def interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"interval must be one of {', '.join(INTERVAL_MS)}; got {interval!r}") from None


@attrs.frozen(kw_only=True)
class Candle:
    interval: str
    start_ms: int
    end_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int
    final: bool  # the exchange said so (X=true) or it came from REST for a period already over
    event_ms: int  # exchange event time of the frame (0 for REST rows, which carry none)


@attrs.frozen(kw_only=True)
class Gap:
    """Bars missing in [start_ms, end_ms) for one timeframe."""

    interval: str
    start_ms: int
    end_ms: int

    @property
    def bars(self) -> int:
        return (self.end_ms - self.start_ms) // interval_ms(self.interval)


class Outcome(enum.Enum):
    INSERTED = "inserted"
    UPDATED = "updated"
    IGNORED = "ignored"  # duplicate, stale (out of order) or outside the retained window


class CandleSeries:
    """One timeframe's bounded history."""

    __slots__ = ("_bars", "_empty", "_step", "interval", "max_bars", "version")

    def __init__(self, interval: str, max_bars: int) -> None:
        if max_bars < 1:
            raise ValueError(f"max_bars must be at least 1; got {max_bars}")
        self.interval = interval
        self._step = interval_ms(interval)
        self.max_bars = max_bars
        self._bars: dict[int, Candle] = {}
        self._empty: set[int] = set()
        self.version = 0  # bumped on every change, so callers can memoise closed()

    def __len__(self) -> int:
        return len(self._bars)

    def _oldest_allowed(self) -> int | None:
        """Start of the oldest slot still inside the window, once the window is full."""
        known = sorted(self._bars.keys() | self._empty)
        if len(known) < self.max_bars:
            return None
        return known[-self.max_bars]

    def apply(self, candle: Candle) -> Outcome:
        """Insert or update one bar by the rules in the module docstring."""
        if candle.interval != self.interval:
            raise ValueError(f"candle interval {candle.interval} does not belong to series {self.interval}")
        if candle.start_ms % self._step or candle.end_ms != candle.start_ms + self._step:
            raise ValueError(f"candle {candle.start_ms}..{candle.end_ms} is not aligned to {self.interval}")
        oldest = self._oldest_allowed()
        if oldest is not None and candle.start_ms < oldest:
            return Outcome.IGNORED
        old = self._bars.get(candle.start_ms)
        if old is None:
            self._bars[candle.start_ms] = candle
            self._empty.discard(candle.start_ms)
            self._trim()
            self.version += 1
            return Outcome.INSERTED
        if old == candle or (old.final and not candle.final):
            return Outcome.IGNORED
        if not candle.final and candle.event_ms < old.event_ms:
            return Outcome.IGNORED
        if old.final and candle.final and candle.event_ms < old.event_ms and candle.event_ms:
            return Outcome.IGNORED
        self._bars[candle.start_ms] = candle
        self.version += 1
        return Outcome.UPDATED

    def mark_empty(self, start_ms: int) -> Outcome:
        """Record a bucket the exchange reported without trades (null OHLC)."""
        if start_ms % self._step:
            raise ValueError(f"start {start_ms} is not aligned to {self.interval}")
        if start_ms in self._bars or start_ms in self._empty:
            return Outcome.IGNORED
        oldest = self._oldest_allowed()
        if oldest is not None and start_ms < oldest:
            return Outcome.IGNORED
        self._empty.add(start_ms)
        self._trim()
        self.version += 1
        return Outcome.INSERTED

    def _trim(self) -> None:
        known = sorted(self._bars.keys() | self._empty)
        for start in known[: max(0, len(known) - self.max_bars)]:
            self._bars.pop(start, None)
            self._empty.discard(start)

    def closed(self, now_ms: int) -> tuple[Candle, ...]:
        """Closed bars, oldest first."""
        return tuple(
            c for _, c in sorted(self._bars.items()) if c.final or c.end_ms <= now_ms
        )

    def forming(self, now_ms: int) -> Candle | None:
        """The bar still open at ``now_ms``, if any frame for it arrived."""
        start = now_ms - now_ms % self._step
        bar = self._bars.get(start)
        return None if bar is None or bar.final else bar

    def last_closed_start(self, now_ms: int) -> int:
        """Start of the newest bar whose end has passed."""
        return now_ms - now_ms % self._step - self._step

    def gaps(self, now_ms: int, *, grace_ms: int = 0) -> tuple[Gap, ...]:
        """Ranges of missing closed bars inside the retained window (the whole window when empty).

        The newest closed bar only counts as missing once ``grace_ms`` has passed since its end, because its
        final frame may still be in flight.
        """
        last = self.last_closed_start(now_ms)
        if now_ms < last + self._step + grace_ms:
            last -= self._step
        first = last - (self.max_bars - 1) * self._step
        known = self._bars.keys() | self._empty
        gaps: list[Gap] = []
        run_start: int | None = None
        for start in range(first, last + self._step, self._step):
            if start in known:
                if run_start is not None:
                    gaps.append(Gap(interval=self.interval, start_ms=run_start, end_ms=start))
                    run_start = None
            elif run_start is None:
                run_start = start
        if run_start is not None:
            gaps.append(Gap(interval=self.interval, start_ms=run_start, end_ms=last + self._step))
        return tuple(gaps)


class CandleBook:
    """The candle series of one market, one per configured timeframe."""

    __slots__ = ("_series",)

    def __init__(self, intervals: Iterable[str], max_bars: int) -> None:
        self._series = {i: CandleSeries(i, max_bars) for i in intervals}

    @property
    def intervals(self) -> tuple[str, ...]:
        return tuple(self._series)

    def series(self, interval: str) -> CandleSeries:
        try:
            return self._series[interval]
        except KeyError:
            raise ValueError(f"interval {interval!r} is not tracked; tracked: {', '.join(self._series)}") from None

    def apply(self, candle: Candle) -> Outcome:
        series = self._series.get(candle.interval)
        return Outcome.IGNORED if series is None else series.apply(candle)

    def closed(self, now_ms: int) -> tuple[tuple[str, tuple[Candle, ...]], ...]:
        return tuple((i, s.closed(now_ms)) for i, s in self._series.items())

    def gaps(self, now_ms: int, *, grace_ms: int = 0) -> tuple[Gap, ...]:
        return tuple(g for s in self._series.values() for g in s.gaps(now_ms, grace_ms=grace_ms))
