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
