"""Candle data, the intra-candle path model, decimal rendering and kline aggregation."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sim.core import default_daily_series, default_minute_series
from engine.sim.marketdata import INTERVALS_MS, Bar, CandleSeries, aggregate, bucket_start_ms
from engine.sim.markets import fixed, padded
from engine.sim.replay import PricePath, leg_steps


def test_bundled_files_load_with_consistent_bars() -> None:
    """The bundled 1m and 1d files load ascending, with low <= open, close <= high on every bar."""
    for s in (default_minute_series(), default_daily_series()):
        assert len(s) > 3000
        assert all(b > a for a, b in zip(s.times, s.times[1:], strict=False))
        assert all(lo <= min(o, c) and max(o, c) <= h
                   for o, h, lo, c in zip(s.opens, s.highs, s.lows, s.closes, strict=True))
    assert default_minute_series().interval_ms == 60_000
    assert default_daily_series().interval_ms == 86_400_000


@given(st.lists(st.integers(0, 10_000), min_size=3, max_size=3), st.integers(3, 40))
def test_leg_steps_give_every_nonempty_leg_a_step(dists: list[int], total: int) -> None:
    """Steps add up to the total (when any leg is non-empty) and every non-empty leg gets at least one."""
    steps = leg_steps(dists, total)
    if any(dists):
        assert sum(steps) == total
    assert all(s >= 1 for s, d in zip(steps, dists, strict=True) if d > 0)
    assert all(s == 0 for s, d in zip(steps, dists, strict=True) if d == 0)


ohlc = st.tuples(st.integers(1, 10**7), st.integers(1, 10**7), st.integers(1, 10**7), st.integers(1, 10**7)).map(
    lambda t: (t[0], max(t), min(t), t[3]))


@given(st.lists(ohlc, min_size=2, max_size=5), st.integers(4, 24))
def test_path_touches_open_high_low_close(bars: list[tuple[int, int, int, int]], per_candle: int) -> None:
    """Each candle's ticks start at O, end at C, and their max/min are exactly H/L."""
    series = CandleSeries(interval_ms=60_000, times=[i * 60_000 for i in range(len(bars))],
                          opens=[b[0] for b in bars], highs=[b[1] for b in bars], lows=[b[2] for b in bars],
                          closes=[b[3] for b in bars], volumes=[Decimal(1)] * len(bars))
    path = PricePath(series, ticks_per_candle=per_candle)
    for i, (o, h, lo, c) in enumerate(bars):
        ticks = path.ticks(i)
        assert len(ticks) == per_candle
        assert ticks[0] == o
        assert ticks[-1] == c
        assert max(ticks) == h
        assert min(ticks) == lo


@given(st.integers(-10**12, 10**12), st.integers(0, 8))
def test_fixed_matches_decimal_padding(units: int, places: int) -> None:
    """The integer fast path renders exactly like quantising the Decimal."""
    assert fixed(units, places) == padded(Decimal(units).scaleb(-places), places)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 40_000), st.integers(1, 3000), st.sampled_from(sorted(INTERVALS_MS)))
def test_kline_aggregation_matches_source_candles(first: int, count: int, interval: str) -> None:
    """Aggregated klines equal open/high/low/close/volume computed directly from the 1m source bars."""
    s = default_minute_series()
    idx = range(first, min(len(s), first + count))
    bars = [Bar(start_ms=s.times[j], open=s.opens[j], high=s.highs[j], low=s.lows[j], close=s.closes[j],
                volume=s.volumes[j], quote_volume=Decimal(0), trades=1) for j in idx]
    rows = list(aggregate(bars, interval, Decimal("0.1")))
    groups: dict[int, list[int]] = {}
    for j in idx:
        groups.setdefault(bucket_start_ms(s.times[j], interval), []).append(j)
    assert len(rows) == len(groups)
    for row, (_start, js) in zip(rows, sorted(groups.items()), strict=True):
        assert Decimal(row["open"]) == Decimal("0.1") * s.opens[js[0]]
        assert Decimal(row["close"]) == Decimal("0.1") * s.closes[js[-1]]
        assert Decimal(row["high"]) == Decimal("0.1") * max(s.highs[j] for j in js)
        assert Decimal(row["low"]) == Decimal("0.1") * min(s.lows[j] for j in js)
        assert Decimal(row["volume"]) == sum((s.volumes[j] for j in js), Decimal(0))
        assert int(row["trades"]) == len(js)


def test_week_and_month_buckets_align_to_calendar() -> None:
    """Weeks start on Monday 00:00 UTC and months on the 1st."""
    t = 1_621_425_000_000  # 2021-05-19 (a Wednesday)
    assert bucket_start_ms(t, "1w") == 1_621_209_600_000  # Monday 2021-05-17
    assert bucket_start_ms(t, "1month") == 1_619_827_200_000  # 2021-05-01
