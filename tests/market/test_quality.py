"""Data-quality statistics: counters per stream, stale time, uptime and reconnects as frozen snapshots."""

from __future__ import annotations

import attrs
import pytest

from engine.market.quality import QualityTracker


def test_counters_and_snapshot_are_frozen() -> None:
    """Counts by stream and reason are reported exactly and the snapshot cannot be mutated."""
    q = QualityTracker()
    q.connected(now_s=0.0)
    for latency in (1.0, 2.0, 3.0, 100.0):
        q.message("ticker", now_s=1.0, latency_ms=latency)
    q.decode_error("depth", "bad json")
    q.decode_error("depth", "bad json")
    q.decode_error("depth", "unknown event")
    q.gap("depth")
    q.resync("depth")
    q.out_of_order("kline.1m")
    stats = q.statistics(5.0)
    ticker = stats.stream("ticker")
    depth = stats.stream("depth")
    assert ticker is not None
    assert depth is not None
    assert (ticker.messages, ticker.latency_ms_max, ticker.last_message_age_s) == (4, 100.0, 4.0)
    assert depth.decode_errors == (("bad json", 2), ("unknown event", 1))
    assert (depth.gaps, depth.resyncs, stats.decode_errors) == (1, 1, 3)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.uptime_s = 0.0  # type: ignore[misc]


def test_stale_time_and_uptime_accumulate_across_reconnects() -> None:
    """Stale time counts only while stale; uptime sums connected periods; reconnects exclude the first."""
    q = QualityTracker()
    q.connected(now_s=0.0)
    q.set_stale("ticker", True, now_s=2.0)
    q.disconnected(now_s=4.0)
    q.connected(now_s=6.0)
    q.set_stale("ticker", False, now_s=7.0)
    stats = q.statistics(10.0)
    ticker = stats.stream("ticker")
    assert ticker is not None
    assert (ticker.stale, ticker.stale_time_s) == (False, 5.0)
    assert (stats.uptime_s, stats.reconnects, stats.connected) == (8.0, 1, True)


def test_structure_version_moves_on_everything_but_plain_messages() -> None:
    """Messages on a known stream leave structure_version alone; new streams, errors, stale flips do not."""
    q = QualityTracker()
    q.message("trade", now_s=0.0)
    v = q.structure_version
    for i in range(5):
        q.message("trade", now_s=float(i), latency_ms=1.0, live=True)
    assert q.structure_version == v
    steps = [
        lambda: q.message("ticker", now_s=1.0),
        lambda: q.decode_error("trade", "bad"),
        lambda: q.gap("depth"),
        lambda: q.resync("depth"),
        lambda: q.out_of_order("depth"),
        lambda: q.set_stale("trade", True, now_s=2.0),
        lambda: q.message("trade", now_s=3.0, live=True),  # ends the stale period
        lambda: q.connected(now_s=4.0),
        lambda: q.disconnected(now_s=5.0),
    ]
    for step in steps:
        before = q.structure_version
        step()
        assert q.structure_version > before
    trade = q.statistics(6.0).stream("trade")
    assert trade is not None
    assert not trade.stale
    assert trade.stale_time_s == 1.0
