"""Channels between actors: bounded with backpressure, or conflating ("latest value wins").

Two overflow policies, chosen per channel and stated where the channel is declared:

* ``BoundedChannel`` (orders, account events, anything that must not be lost): a thin declaration around
  ``trio.open_memory_channel`` with an explicit ``size``. A full channel blocks the sender
  (backpressure); nothing is ever dropped.
* ``open_latest_channel`` (market data): ``send``/``send_nowait`` never block; a value the receiver has
  not taken yet is overwritten, and the overwrite is counted (``statistics().overwritten``). The receiver
  therefore sees the latest state and never a growing queue, and ``receive()`` waits for a value newer
  than the last one it took.
* ``LatestValue`` is the same "latest wins" idea for several independent readers: each reader remembers
  the version it saw and ``wait_changed(seen)`` returns as soon as there is a newer one. It has no
  sender/receiver ends to close, so it also outlives restarts of its writer. Use the channel for one
  consumer with trio channel semantics (``async for``, ``EndOfChannel``), the holder for fan-out.

Closed-channel semantics follow trio's memory channels: using a closed end raises
``trio.ClosedResourceError``; sending after every receive end closed raises ``trio.BrokenResourceError``;
after every send end closed the receiver still gets the pending value, then ``trio.EndOfChannel``. Ends
can be ``clone()``d; the channel side counts as closed when all its clones are.
"""

from __future__ import annotations

from typing import Generic, TypeVar, final

import attrs
import trio

from engine.confspec import at_least, non_empty

__all__ = [
    "BoundedChannel",
    "LatestChannelStatistics",
    "LatestReceiver",
    "LatestSender",
    "LatestValue",
    "open_latest_channel",
]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class BoundedChannel(Generic[T]):
    """A declared bounded channel, e.g. ``ORDERS: BoundedChannel[OrderCommand] = BoundedChannel(name=...)``.

    ``size`` is the buffer: 0 (the default, trio's "if in doubt, use 0") makes every send a rendezvous.
    """

    name: str = attrs.field(validator=non_empty)
    size: int = attrs.field(default=0, validator=at_least(0))

    def open(self) -> tuple[trio.MemorySendChannel[T], trio.MemoryReceiveChannel[T]]:
        return trio.open_memory_channel[T](self.size)


@attrs.frozen(kw_only=True)
class LatestChannelStatistics:
    sent: int  # values accepted by send/send_nowait
    received: int  # values taken by a receiver
    overwritten: int  # values replaced before anyone took them (conflated)
    pending: bool  # a value is waiting to be taken
    open_send_channels: int
    open_receive_channels: int
    tasks_waiting_receive: int


class _LatestState(Generic[T]):
    """State shared by all ends of one latest-value channel."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.pending = False
        self.sent = 0
        self.received = 0
        self.overwritten = 0
        self.open_senders = 0
        self.open_receivers = 0
        self.lot = trio.lowlevel.ParkingLot()

    def statistics(self) -> LatestChannelStatistics:
        return LatestChannelStatistics(
            sent=self.sent,
            received=self.received,
            overwritten=self.overwritten,
            pending=self.pending,
            open_send_channels=self.open_senders,
            open_receive_channels=self.open_receivers,
            tasks_waiting_receive=self.lot.statistics().tasks_waiting,
        )


class LatestSender(trio.abc.SendChannel[T]):
    """Send end of a conflating channel: never blocks, overwrites an untaken value."""

    def __init__(self, state: _LatestState[T]) -> None:
        self._state = state
        self._closed = False
        state.open_senders += 1

    def send_nowait(self, value: T) -> None:
        state = self._state
        if self._closed:
            raise trio.ClosedResourceError("this send end is closed")
        if state.open_receivers == 0:
            raise trio.BrokenResourceError("every receive end of this channel is closed")
        if state.pending:
            state.overwritten += 1
        state.value = value
        state.pending = True
        state.sent += 1
        state.lot.unpark_all()

    async def send(self, value: T) -> None:
        """Same as ``send_nowait`` (it never waits) plus a trio checkpoint."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self.send_nowait(value)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def clone(self) -> LatestSender[T]:
        if self._closed:
            raise trio.ClosedResourceError("cannot clone a closed send end")
        return LatestSender(self._state)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._state.open_senders -= 1
        if self._state.open_senders == 0:
            # Wake receivers so they drain the pending value, then see EndOfChannel.
            self._state.lot.unpark_all()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> LatestChannelStatistics:
        return self._state.statistics()


class LatestReceiver(trio.abc.ReceiveChannel[T]):
    """Receive end of a conflating channel: each ``receive`` returns a value newer than the last taken."""

    def __init__(self, state: _LatestState[T]) -> None:
        self._state = state
        self._closed = False
        state.open_receivers += 1

    def receive_nowait(self) -> T:
        state = self._state
        if self._closed:
            raise trio.ClosedResourceError("this receive end is closed")
        if state.pending:
            value = state.value
            state.pending = False
            state.value = None  # do not keep a consumed value alive
            state.received += 1
            return value  # type: ignore[return-value]  # pending implies a value was stored
        if state.open_senders == 0:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                value = self.receive_nowait()
            except trio.WouldBlock:
                await self._state.lot.park()
                continue
            await trio.lowlevel.cancel_shielded_checkpoint()
            return value

    def clone(self) -> LatestReceiver[T]:
        if self._closed:
            raise trio.ClosedResourceError("cannot clone a closed receive end")
        return LatestReceiver(self._state)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._state.open_receivers -= 1
        # A task of ours parked in receive() must notice the close (it raises ClosedResourceError).
        self._state.lot.unpark_all()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> LatestChannelStatistics:
        return self._state.statistics()


# Written as a class, like trio's open_memory_channel, so callers can say open_latest_channel[Ticker]().
@final
class open_latest_channel(tuple["LatestSender[T]", "LatestReceiver[T]"]):
    """Open a conflating channel: ``tx, rx = open_latest_channel[Ticker]()`` (data flows left to right)."""

    def __new__(cls) -> tuple[LatestSender[T], LatestReceiver[T]]:  # type: ignore[misc]
        state: _LatestState[T] = _LatestState()
        return LatestSender(state), LatestReceiver(state)

    def __init__(self) -> None: ...


class LatestValue(Generic[T]):
    """The latest value of something, for any number of readers, each waiting for a newer version.

    Versions start at 0 (no value yet) and increase by one per ``set``. A reader keeps the version it last
    saw; ``wait_changed(seen)`` returns ``(version, value)`` with ``version > seen``, at once if there
    already is one. Readers never consume anything, so one slow reader affects no other.
    """

    def __init__(self) -> None:
        self._value: T | None = None
        self._version = 0
        self._lot = trio.lowlevel.ParkingLot()

    @property
    def version(self) -> int:
        return self._version

    def set(self, value: T) -> None:
        self._value = value
        self._version += 1
        self._lot.unpark_all()

    def get_nowait(self) -> tuple[int, T]:
        """The current ``(version, value)``; ``trio.WouldBlock`` before the first ``set``."""
        if self._version == 0:
            raise trio.WouldBlock
        return self._version, self._value  # type: ignore[return-value]  # version > 0 implies a value

    async def wait_changed(self, seen: int) -> tuple[int, T]:
        """Wait until the version is newer than ``seen``, then return ``(version, value)``."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while self._version <= seen:
            await self._lot.park()
        result = self.get_nowait()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return result
