"""The notices fan-out never blocks a publisher: full or gone consumers lose notices, counted per consumer."""

from __future__ import annotations

import pytest
import trio

from engine.notices import Notice, NoticeFanout, Severity


def _notice(n: int) -> Notice:
    return Notice(kind="order", text=f"order {n}", at_ms=n, code="NEW")


async def test_slow_consumer_drops_are_counted_and_others_unaffected() -> None:
    """A full consumer buffer drops (counted) while another consumer still gets every notice."""
    fanout = NoticeFanout()
    slow = fanout.subscribe("slow", size=2)
    fast = fanout.subscribe("fast", size=10)
    for n in range(5):
        fanout.publish(_notice(n))
    stats = fanout.statistics()
    assert stats.published == 5
    assert dict(stats.delivered) == {"slow": 2, "fast": 5}
    assert dict(stats.dropped) == {"slow": 3, "fast": 0}
    assert [slow.receive_nowait().at_ms for _ in range(2)] == [0, 1]
    assert [fast.receive_nowait().at_ms for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_stopped_consumer_and_close() -> None:
    """Publishing to a consumer whose ends are closed counts a drop; close() ends every subscription."""
    fanout = NoticeFanout()
    gone = fanout.subscribe("gone")
    live = fanout.subscribe("live")
    gone.close()
    fanout.publish(_notice(1))
    assert dict(fanout.statistics().dropped) == {"gone": 1, "live": 0}
    fanout.close()
    fanout.publish(_notice(2))  # after close: counted, never raised at the publisher
    assert (await live.receive()).at_ms == 1
    with pytest.raises(trio.EndOfChannel):
        await live.receive()


def test_subscription_and_notice_validation() -> None:
    """Duplicate consumer names, empty buffers, unknown kinds and empty texts are refused."""
    fanout = NoticeFanout()
    fanout.subscribe("status")
    with pytest.raises(ValueError, match="already exists"):
        fanout.subscribe("status")
    with pytest.raises(ValueError, match="size must be >= 1"):
        fanout.subscribe("metrics", size=0)
    with pytest.raises(ValueError, match="must be one of"):
        Notice(kind="trade", text="x", at_ms=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be empty"):
        Notice(kind="info", text="", at_ms=0)
    assert Notice(kind="alert", text="x", at_ms=0, severity=Severity.CRITICAL).code == ""
