"""An independent, rule-by-rule statement of the order lifecycle, used to cross-check TRANSITIONS.

It is written as reasoning about the exchange rather than as a table, so that a typo in either description
shows up as a disagreement in the tests.
"""

from __future__ import annotations

from engine.orders.fsm import EventType, Status

__all__ = ["SETTLED", "expected_target"]

SETTLED = frozenset({Status.FILLED, Status.CANCELLED, Status.EXPIRED})

# What each exchange-status report says the order is now.
_REPORTED = {
    EventType.LOOKUP_OPEN: Status.ACKNOWLEDGED,
    EventType.LOOKUP_PARTIAL: Status.PARTIALLY_FILLED,
    EventType.LOOKUP_FILLED: Status.FILLED,
    EventType.LOOKUP_CANCELLED: Status.CANCELLED,
    EventType.LOOKUP_EXPIRED: Status.EXPIRED,
    EventType.CANCELLED: Status.CANCELLED,
    EventType.EXPIRED: Status.EXPIRED,
}
_SNAPSHOT_OF_OPEN_ORDER = {EventType.LOOKUP_OPEN, EventType.LOOKUP_PARTIAL}
_MAYBE_ON_EXCHANGE = {Status.SENT, Status.UNKNOWN}


def expected_target(status: Status, kind: EventType) -> Status | None:
    """Where ``kind`` takes an order in ``status``, or None if it must be refused."""
    if status is Status.REJECTED:
        return None  # nothing may happen to an order that never existed on the exchange
    if status is Status.NEW:
        # Unsent: it can only be sent or withdrawn.
        return {EventType.SUBMITTED: Status.SENT, EventType.CANCELLED: Status.CANCELLED}.get(kind)
    if kind is EventType.SUBMITTED:
        return None  # each attempt is sent once
    if kind is EventType.REJECTED:
        return Status.REJECTED if status is Status.SENT else None  # only the submit's own response rejects
    if kind is EventType.LOOKUP_NOT_FOUND:
        return Status.REJECTED if status in _MAYBE_ON_EXCHANGE else None
    if kind is EventType.TIMED_OUT:
        return Status.UNKNOWN if status in _MAYBE_ON_EXCHANGE else status  # known orders stay as they are
    if kind is EventType.ACCEPTED:
        return Status.ACKNOWLEDGED if status in _MAYBE_ON_EXCHANGE else status  # a late ack changes nothing
    if kind is EventType.FILL_COMPLETE:
        return Status.FILLED  # the last trade wins over any status report
    if kind is EventType.FILL_PARTIAL:
        return status if status in SETTLED else Status.PARTIALLY_FILLED
    reported = _REPORTED[kind]
    if status in SETTLED:
        # A settled order accepts a repeat of its own outcome and stale snapshots of it while it was open.
        return status if reported is status or kind in _SNAPSHOT_OF_OPEN_ORDER else None
    if status is Status.PARTIALLY_FILLED and reported is Status.ACKNOWLEDGED:
        return Status.PARTIALLY_FILLED  # a snapshot older than the fills we hold
    return reported
