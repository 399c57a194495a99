"""Candles: closed-bar semantics, dedupe, out-of-order frames, gap detection and repair, bounded history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market.candles import Candle, CandleBook, CandleSeries, Gap, Outcome

M = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000  # aligned to every timeframe


def bar(i: int, close: str = "100", *, final: bool = True, event_ms: int = 0, interval: str = "1m") -> Candle:
    step = {"1m": M, "5m": 5 * M}[interval]
    c = Decimal(close)
    return Candle(interval=interval, start_ms=T0 + i * step, end_ms=T0 + (i + 1) * step, open=c, high=c, low=c,
                  close=c, volume=Decimal(1), trades=1, final=final, event_ms=event_ms)


def test_bar_is_closed_only_when_its_end_has_passed() -> None:
    """A non-final bar is excluded from closed() until now reaches its end, then included."""
    s = CandleSeries("1m", 10)
    s.apply(bar(0, final=False, event_ms=T0 + 1000))
    assert s.closed(T0 + M - 1) == ()
    assert s.forming(T0 + M - 1) == bar(0, final=False, event_ms=T0 + 1000)
    assert s.closed(T0 + M) == (bar(0, final=False, event_ms=T0 + 1000),)


def test_final_frame_closes_and_is_not_rolled_back() -> None:
    """After X=true a late non-final frame for the same bar is ignored."""
    s = CandleSeries("1m", 10)
    assert s.apply(bar(0, "100", final=False, event_ms=T0 + 1)) is Outcome.INSERTED
    assert s.apply(bar(0, "101", final=True, event_ms=T0 + M)) is Outcome.UPDATED
    assert s.apply(bar(0, "99", final=False, event_ms=T0 + 2)) is Outcome.IGNORED
    assert s.apply(bar(0, "101", final=True, event_ms=T0 + M)) is Outcome.IGNORED
    assert [c.close for c in s.closed(T0)] == [Decimal("101")]


@settings(max_examples=100, deadline=None)
@given(st.permutations(list(range(8))), st.lists(st.integers(0, 7), max_size=6))
def test_any_arrival_order_gives_one_bar_per_start_ascending(order: list[int], repeats: list[int]) -> None:
    """Shuffled and repeated frames yield exactly one bar per start, ascending, with the final content."""
    s = CandleSeries("1m", 100)
    for i in order + repeats:
        s.apply(bar(i, str(100 + i), event_ms=T0 + (i + 1) * M))
    closed = s.closed(T0 + 8 * M)
    assert [c.start_ms for c in closed] == [T0 + i * M for i in range(8)]
    assert [c.close for c in closed] == [Decimal(100 + i) for i in range(8)]


def test_gaps_are_reported_as_ranges_and_repaired_by_backfill() -> None:
    """Missing bars inside the window are reported as half-open ranges; filling them clears the report."""
    s = CandleSeries("1m", 6)
    for i in (0, 1, 4):
        s.apply(bar(i))
    now = T0 + 6 * M + 10_000  # bars 0..5 closed, bar 5 inside its grace period
    assert s.gaps(now, grace_ms=30_000) == (Gap(interval="1m", start_ms=T0 - M, end_ms=T0),
                                             Gap(interval="1m", start_ms=T0 + 2 * M, end_ms=T0 + 4 * M))
    assert s.gaps(now, grace_ms=0)[-1] == Gap(interval="1m", start_ms=T0 + 5 * M, end_ms=T0 + 6 * M)
    for i in (2, 3, 5):
        s.apply(bar(i))
    s.mark_empty(T0 - M)
    assert s.gaps(now, grace_ms=0) == ()


def test_empty_series_reports_the_whole_window() -> None:
    """With no data the gap is exactly the retained window ending at the last closed bar."""
    s = CandleSeries("5m", 4)
    now = T0 + 20 * 5 * M + 1
    (gap,) = s.gaps(now)
    assert gap.end_ms == T0 + 20 * 5 * M
    assert gap.bars == 4


def test_history_is_bounded_and_keeps_the_newest() -> None:
    """At most max_bars bars are kept; older arrivals outside a full window are ignored."""
    s = CandleSeries("1m", 3)
    for i in range(10):
        s.apply(bar(i))
    assert [c.start_ms for c in s.closed(T0 + 20 * M)] == [T0 + 7 * M, T0 + 8 * M, T0 + 9 * M]
    assert s.apply(bar(2)) is Outcome.IGNORED


def test_misaligned_bar_is_rejected() -> None:
    """A bar that does not start on the interval grid is a caller bug and raises."""
    c = bar(0)
    with pytest.raises(ValueError, match="not aligned"):
        CandleSeries("1m", 3).apply(Candle(**{**_fields(c), "start_ms": c.start_ms + 1, "end_ms": c.end_ms + 1}))


def _fields(c: Candle) -> dict[str, object]:
    return {f: getattr(c, f) for f in ("interval", "start_ms", "end_ms", "open", "high", "low", "close", "volume",
                                       "trades", "final", "event_ms")}


def test_book_routes_by_interval_and_ignores_untracked() -> None:
    """Each timeframe has its own series; an untracked interval is ignored."""
    book = CandleBook(["1m"], 10)
    assert book.apply(bar(0)) is Outcome.INSERTED
    assert book.apply(bar(0, interval="5m")) is Outcome.IGNORED
    assert dict(book.closed(T0 + M))["1m"] == (bar(0),)
