"""Notices: short human-readable announcements (orders, fills, risk, alerts, restarts) for the side actors.

Owns the :class:`Notice` message and :class:`NoticeFanout`, the one-to-many "notices" channel that the
orders, risk and supervisor wiring publish to and that the status, metrics and notifier actors consume.

Rules:

* Publishing never blocks and never fails the publisher: :meth:`NoticeFanout.publish` is synchronous and
  uses ``send_nowait`` into one bounded channel per consumer. A consumer whose buffer is full loses that
  notice (counted per consumer in :meth:`NoticeFanout.statistics`), so a slow side actor can never slow
  the trading path. A consumer whose every receive end is closed (it stopped) is counted the same way.
* Notices are informative only: nothing trades on them. The trading state itself travels on the bounded
  order/account channels and the ``LatestValue`` holders, never here.
* ``code`` is a short machine-readable tag (an order status such as ``"FILLED"``, a risk block code) that
  metrics label by; ``text`` is for people.
"""

from __future__ import annotations

import enum
from typing import Final, Literal, TypeAlias

import attrs
import trio

from engine.confspec import non_empty, one_of

__all__ = [
    "NOTICE_KINDS",
    "Notice",
    "NoticeFanout",
    "NoticeKind",
    "NoticeStatistics",
    "Severity",
]

NoticeKind: TypeAlias = Literal["order", "fill", "risk", "alert", "restart", "info"]
NOTICE_KINDS: Final[tuple[NoticeKind, ...]] = ("order", "fill", "risk", "alert", "restart", "info")


class Severity(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@attrs.frozen(kw_only=True)
class Notice:
    """One announcement, e.g. ``Notice(kind="fill", text="bought 0.01 BTC at 95000", at_ms=...)``."""

    kind: NoticeKind = attrs.field(validator=one_of(NOTICE_KINDS))
    text: str = attrs.field(validator=non_empty)
    at_ms: int  # wall-clock milliseconds of the event (exchange time where there is one)
    severity: Severity = Severity.INFO
    code: str = ""  # order status for kind "order", block code for kind "risk", else free or empty


@attrs.frozen(kw_only=True)
class NoticeStatistics:
    published: int
    delivered: tuple[tuple[str, int], ...]  # (consumer, notices it was handed)
    dropped: tuple[tuple[str, int], ...]  # (consumer, notices lost because it was full or gone)


@attrs.define(eq=False)
class _Consumer:
    send: trio.MemorySendChannel[Notice]
    delivered: int = 0
    dropped: int = 0


class NoticeFanout:
    """Fan-out of notices to named consumers, each with its own bounded buffer (see the module rules).

    Wiring: ``fanout = NoticeFanout()``; ``rx = fanout.subscribe("status", size=64)`` once per consumer
    (hand each actor attempt ``rx.clone()`` so a restart does not close the subscription); publishers call
    ``fanout.publish(notice)``.
    """

    def __init__(self) -> None:
        self._consumers: dict[str, _Consumer] = {}
        self._published = 0

    def subscribe(self, name: str, *, size: int = 64) -> trio.MemoryReceiveChannel[Notice]:
        """A new consumer's receive end, buffering at most ``size`` notices."""
        if not name:
            raise ValueError("a notice consumer needs a name")
        if size < 1:
            raise ValueError(f"size must be >= 1; got {size}")
        if name in self._consumers:
            raise ValueError(f"a notice consumer named {name!r} already exists")
        send, receive = trio.open_memory_channel[Notice](size)
        self._consumers[name] = _Consumer(send=send)
        return receive

    def publish(self, notice: Notice) -> None:
        """Hand ``notice`` to every consumer that has room; never blocks, never raises for a consumer."""
        self._published += 1
        for consumer in self._consumers.values():
            try:
                consumer.send.send_nowait(notice)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                consumer.dropped += 1
            else:
                consumer.delivered += 1

    def close(self) -> None:
        """Close every consumer's send side: consumers get the buffered notices, then ``EndOfChannel``."""
        for consumer in self._consumers.values():
            consumer.send.close()

    def statistics(self) -> NoticeStatistics:
        return NoticeStatistics(
            published=self._published,
            delivered=tuple((name, c.delivered) for name, c in self._consumers.items()),
            dropped=tuple((name, c.dropped) for name, c in self._consumers.items()),
        )
