"""Channels: conflating latest-value channel, LatestValue fan-out, bounded channels with backpressure."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.runtime.channels import BoundedChannel, LatestValue, open_latest_channel


def test_latest_channel_keeps_only_the_latest_and_counts_overwrites() -> None:
    """Three sends before a receive deliver only the third; two overwrites are counted."""
    tx, rx = open_latest_channel[int]()
    for value in (1, 2, 3):
        tx.send_nowait(value)
    assert rx.receive_nowait() == 3
    with pytest.raises(trio.WouldBlock):
        rx.receive_nowait()
    stats = rx.statistics()
    assert (stats.sent, stats.received, stats.overwritten, stats.pending) == (3, 1, 2, False)


@settings(max_examples=100)
@given(st.lists(st.one_of(st.integers(min_value=0, max_value=10**6), st.none()), max_size=60))
def test_latest_channel_matches_a_one_slot_model(ops: list[int | None]) -> None:
    """For any interleaving of sends (ints) and receives (None), the channel behaves like one slot."""
    tx, rx = open_latest_channel[int]()
    slot: list[int] = []
    overwritten = 0
    for op in ops:
        if op is None:
            if slot:
                assert rx.receive_nowait() == slot.pop()
            else:
                with pytest.raises(trio.WouldBlock):
                    rx.receive_nowait()
        else:
            overwritten += len(slot)
            slot[:] = [op]
            tx.send_nowait(op)
        assert rx.statistics().overwritten == overwritten
        assert rx.statistics().pending == bool(slot)


async def test_receive_waits_for_a_newer_value(autojump_clock: trio.testing.MockClock) -> None:
    """After taking a value, receive() blocks until the next send, never returning the same value twice."""
    tx, rx = open_latest_channel[str]()
    tx.send_nowait("a")
    assert await rx.receive() == "a"

    async def send_later() -> None:
        await trio.sleep(5.0)
        await tx.send("b")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_later)
        assert await rx.receive() == "b"
        assert trio.current_time() == 5.0


async def test_slow_consumer_sees_latest_and_never_builds_a_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A consumer looking once per second gets the last of each ten-value burst; 90 values are conflated."""
    tx, rx = open_latest_channel[int]()
    got: list[tuple[float, int]] = []
    max_pending = 0

    async def producer() -> None:
        nonlocal max_pending
        async with tx:
            for second in range(10):
                for j in range(1, 11):
                    await trio.sleep_until(second + 0.05 * j)
                    await tx.send(second * 10 + j)
                    max_pending = max(max_pending, int(tx.statistics().pending))

    async def consumer() -> None:
        async with rx:
            async for value in rx:
                got.append((trio.current_time(), value))
                # Processing is slow: the next look is at 0.75 s past the next second.
                await trio.sleep_until(math.floor(trio.current_time()) + 1.75)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        nursery.start_soon(producer)
    assert got == [(0.05, 1)] + [(second + 0.75, (second + 1) * 10) for second in range(1, 10)]
    stats = tx.statistics()
    assert (stats.sent, stats.received, stats.overwritten) == (100, 10, 90)
    assert max_pending == 1


async def test_closing_the_sender_drains_then_ends(autojump_clock: trio.testing.MockClock) -> None:
    """After the last send end closes, the pending value is still delivered, then EndOfChannel."""
    tx, rx = open_latest_channel[int]()
    tx2 = tx.clone()
    tx.send_nowait(7)
    await tx.aclose()
    tx2.send_nowait(8)
    tx2.close()
    assert [value async for value in rx] == [8]
    with pytest.raises(trio.EndOfChannel):
        await rx.receive()


async def test_closed_ends_raise_like_trio_channels(autojump_clock: trio.testing.MockClock) -> None:
    """Using a closed end raises ClosedResourceError; sending with no receiver left raises Broken."""
    tx, rx = open_latest_channel[int]()
    rx2 = rx.clone()
    rx.close()
    with pytest.raises(trio.ClosedResourceError):
        rx.receive_nowait()
    tx.send_nowait(1)  # rx2 is still open
    await rx2.aclose()
    with pytest.raises(trio.BrokenResourceError):
        tx.send_nowait(2)
    tx.close()
    with pytest.raises(trio.ClosedResourceError):
        await tx.send(3)
    with pytest.raises(trio.ClosedResourceError):
        tx.clone()


async def test_blocked_receive_wakes_on_close(autojump_clock: trio.testing.MockClock) -> None:
    """A receive waiting on an empty channel ends with EndOfChannel when the sender closes."""
    tx, rx = open_latest_channel[int]()

    async def close_later() -> None:
        await trio.sleep(3.0)
        tx.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(close_later)
        with pytest.raises(trio.EndOfChannel):
            await rx.receive()
    assert trio.current_time() == 3.0
    assert rx.statistics().tasks_waiting_receive == 0


async def test_cancelled_receive_leaves_the_value(autojump_clock: trio.testing.MockClock) -> None:
    """A receive cancelled while waiting takes nothing; the next send is still delivered."""
    tx, rx = open_latest_channel[int]()
    with trio.move_on_after(1.0):
        await rx.receive()
    tx.send_nowait(4)
    assert await rx.receive() == 4


async def test_latest_value_serves_several_readers_independently(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each reader gets the newest version past the one it saw; a slow reader does not affect a fast one."""
    holder = LatestValue[str]()
    with pytest.raises(trio.WouldBlock):
        holder.get_nowait()
    fast: list[tuple[int, str]] = []
    slow: list[tuple[int, str]] = []

    async def reader(out: list[tuple[int, str]], pause: float, count: int) -> None:
        seen = 0
        for _ in range(count):
            seen, value = await holder.wait_changed(seen)
            out.append((seen, value))
            await trio.sleep(pause)

    async def writer() -> None:
        for n in range(1, 7):
            await trio.sleep(1.0)
            holder.set(f"v{n}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader, fast, 0.0, 6)
        nursery.start_soon(reader, slow, 2.25, 3)
        nursery.start_soon(writer)
    assert fast == [(n, f"v{n}") for n in range(1, 7)]
    # The slow reader looks at t=1, 3.25 and 5.5: it skips versions it was too busy to see.
    assert slow == [(1, "v1"), (3, "v3"), (5, "v5")]
    assert holder.get_nowait() == (6, "v6")


async def test_bounded_channel_applies_backpressure_and_drops_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With size 2, the third send waits for the consumer; every value arrives, in order."""
    orders: BoundedChannel[int] = BoundedChannel(name="orders", size=2)
    tx, rx = orders.open()
    send_times: list[float] = []

    async def producer() -> None:
        async with tx:
            for n in range(6):
                await tx.send(n)
                send_times.append(trio.current_time())

    received: list[int] = []

    async def consumer() -> None:
        async with rx:
            async for n in rx:
                received.append(n)
                await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        nursery.start_soon(consumer)
    assert received == list(range(6))
    # Two values fit in the buffer and one is in the consumer's hands; then one send per second.
    assert send_times == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]


def test_bounded_channel_declaration_is_validated() -> None:
    """A negative size or an empty name is rejected."""
    with pytest.raises(ValueError, match="must be in \\[0, inf\\]; got -1"):
        BoundedChannel[int](name="orders", size=-1)
    with pytest.raises(ValueError, match="must not be empty"):
        BoundedChannel[int](name="", size=1)
