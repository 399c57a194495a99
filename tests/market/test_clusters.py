"""Liquidation clusters: bucketing, half-life decay, bounded buckets, nearest clusters and burst alerts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market.clusters import ClusterMap


def cmap(**kw: object) -> ClusterMap:
    args: dict[str, object] = {"bucket_size": Decimal(100), "half_life_s": 60.0, "max_buckets": 50,
                               "window_s": 10.0, "threshold": Decimal(10_000)}
    args.update(kw)
    return ClusterMap(**args)  # type: ignore[arg-type]


def test_weight_halves_every_half_life() -> None:
    """A bucket's weight is its notional times 0.5 ** (age / half-life)."""
    m = cmap()
    m.add(price=Decimal("50050"), quantity=Decimal("1"), side="Ask", ts_ms=0)
    (c,) = m.clusters(0)
    assert (c.price_lo, c.price_hi, c.longs_liquidated, c.shorts_liquidated) == (
        Decimal(50000), Decimal(50100), Decimal(50050), Decimal(0))
    assert float(m.clusters(60_000)[0].weight) == pytest.approx(25025.0)
    assert float(m.clusters(180_000)[0].weight) == pytest.approx(50050 / 8)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 100_000), st.integers(1, 100), st.integers(0, 600_000)), max_size=30),
       st.integers(0, 600_000))
def test_weights_never_exceed_total_notional_and_decay_monotonically(
        events: list[tuple[int, int, int]], later: int) -> None:
    """Total weight is at most the notional added, never negative, and never grows without new liquidations."""
    m = cmap(max_buckets=1000)
    for price, qty, ts in events:
        m.add(price=Decimal(price), quantity=Decimal(qty), side="Bid", ts_ms=ts)
    now = max((ts for _, _, ts in events), default=0)
    total = sum(Decimal(p) * q for p, q, _ in events)
    w_now = sum(c.weight for c in m.clusters(now))
    w_later = sum(c.weight for c in m.clusters(now + later))
    assert 0 <= w_later <= w_now * Decimal("1.000001") + Decimal("0.001")
    assert w_now <= total * Decimal("1.000001") + Decimal("0.001")


def test_bucket_count_is_bounded_dropping_the_lightest() -> None:
    """Past max_buckets the lightest buckets go first."""
    m = cmap(max_buckets=2)
    m.add(price=Decimal(100), quantity=Decimal(5), side="Bid", ts_ms=0)
    m.add(price=Decimal(200), quantity=Decimal(1), side="Bid", ts_ms=0)
    m.add(price=Decimal(300), quantity=Decimal(5), side="Bid", ts_ms=0)
    assert sorted(c.price_lo for c in m.clusters(0)) == [Decimal(100), Decimal(300)]


def test_near_returns_heaviest_clusters_in_reach() -> None:
    """near() keeps only clusters within the bps reach of the price, heaviest first."""
    m = cmap()
    m.add(price=Decimal(10_000), quantity=Decimal(1), side="Bid", ts_ms=0)
    m.add(price=Decimal(10_050), quantity=Decimal(3), side="Ask", ts_ms=0)
    m.add(price=Decimal(12_000), quantity=Decimal(9), side="Ask", ts_ms=0)
    near = m.near(Decimal(10_020), within_bps=Decimal(100), now_ms=0)
    assert [c.price_lo for c in near] == [Decimal(10_000)]
    assert near[0].weight == Decimal(10_000 + 30_150)


def test_burst_fires_only_above_threshold_inside_window() -> None:
    """The burst alert sums notional in the window; old liquidations fall out of it."""
    m = cmap(threshold=Decimal(10_000), window_s=10.0)
    m.add(price=Decimal(5000), quantity=Decimal(1), side="Bid", ts_ms=0)
    m.add(price=Decimal(5000), quantity=Decimal(1), side="Ask", ts_ms=5_000)
    assert m.burst(5_000) is None  # exactly at the threshold is not above it
    m.add(price=Decimal(5000), quantity=Decimal(1), side="Ask", ts_ms=9_000)
    burst = m.burst(9_000)
    assert burst is not None
    assert (burst.notional, burst.count) == (Decimal(15_000), 3)
    assert m.burst(12_000) is None
