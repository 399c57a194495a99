"""Order lifecycle as a pure state machine (h11 / nautilus style).

Rule 1: every status change of an order goes through :data:`TRANSITIONS`, a
``dict[(Status, EventType), Status]``, via :func:`apply_event`. A pair missing from the table raises
:class:`InvalidTransition`; there is no other way to change an :class:`OrderRecord`'s status.

Rule 2: fills are facts, status messages are views. A fill is identified by its exchange trade id; the same
trade id is counted once (a repeat with identical values is a no-op, a repeat with different values is an
:class:`~engine.errors.InvariantViolation`), and the filled quantity never exceeds the order quantity.

Rule 3: an attempt whose submit timed out is ``UNKNOWN``. It is resolved only by looking the order up by its
``clientId`` (``LookupFound`` / ``LookupNotFound``) or by a later exchange event, never by resending; a new
send is a new attempt with its own client id (:mod:`engine.orders.ids`).

The table is keyed by :class:`EventType`, not by event class, because two targets depend on the event's
data: a fill completes the order or not (``FILL_COMPLETE`` / ``FILL_PARTIAL``), and a lookup reports one of
five exchange statuses (``LOOKUP_*``). :func:`event_kind` does that classification, so the table itself
stays a plain dict that a test can enumerate.

Pure: no trio, no httpx, no clock. Times arrive inside events (``ts_ms``) or from the caller.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import attrs

from engine.errors import InvariantViolation, RemoteProtocolError
from engine.orders.ids import client_id_for

__all__ = [
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "Accepted",
    "Cancelled",
    "EventType",
    "Expired",
    "FillEvent",
    "InvalidTransition",
    "LookupFound",
    "LookupNotFound",
    "OrderEvent",
    "OrderRecord",
    "OrderTracker",
    "Outcome",
    "Rejected",
    "Side",
    "Status",
    "Submitted",
    "TimedOut",
    "apply_event",
    "event_kind",
    "new_order",
    "restore_order",
    "status_from_exchange",
]

_ZERO = Decimal(0)
_UINT32 = 1 << 32


class Status(enum.Enum):
    """Where one attempt of an order stands, as far as we know."""

    NEW = "NEW"  # created and journaled, not sent: certainly absent from the exchange
    SENT = "SENT"  # the POST is (about to be) on the wire: it may exist on the exchange
    ACKNOWLEDGED = "ACKNOWLEDGED"  # the exchange accepted it; resting, nothing filled yet
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"  # IOC/FOK remainder, post-only kill, price band, STP ...
    REJECTED = "REJECTED"  # refused by the exchange, or proven never to have reached it
    UNKNOWN = "UNKNOWN"  # submit timed out or its response was lost: look it up by clientId


OPEN_STATUSES: frozenset[Status] = frozenset(
    {Status.NEW, Status.SENT, Status.ACKNOWLEDGED, Status.PARTIALLY_FILLED, Status.UNKNOWN}
)
TERMINAL_STATUSES: frozenset[Status] = frozenset(
    {Status.FILLED, Status.CANCELLED, Status.EXPIRED, Status.REJECTED}
)


class Side(enum.Enum):
    """Order side; the value is Backpack's wire spelling."""

    BUY = "Bid"
    SELL = "Ask"


class EventType(enum.Enum):
    """The table's event axis: an event class, refined by its data where the target depends on it."""

    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    FILL_PARTIAL = "FILL_PARTIAL"  # a new trade that leaves quantity open
    FILL_COMPLETE = "FILL_COMPLETE"  # a new trade that brings the filled quantity to the order quantity
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    LOOKUP_OPEN = "LOOKUP_OPEN"  # found by clientId, status New
    LOOKUP_PARTIAL = "LOOKUP_PARTIAL"  # found, PartiallyFilled
    LOOKUP_FILLED = "LOOKUP_FILLED"
    LOOKUP_CANCELLED = "LOOKUP_CANCELLED"
    LOOKUP_EXPIRED = "LOOKUP_EXPIRED"
    LOOKUP_NOT_FOUND = "LOOKUP_NOT_FOUND"


class InvalidTransition(InvariantViolation):
    """An event that the order's current status does not allow (a bug or an impossible exchange report)."""

    def __init__(self, status: Status, kind: EventType, client_id: int) -> None:
        self.status = status
        self.kind = kind
        self.client_id = client_id
        super().__init__(f"order {client_id}: {kind.value} is not allowed in status {status.value}")


# --------------------------------------------------------------------------------------------------------
# Validators (messages are our own vocabulary: a bad value is a bug in whoever built the message).


def _positive(_inst: object, attr: attrs.Attribute[Any], value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise InvariantViolation(f"{attr.name} must be a finite Decimal > 0; got {value!r}")


def _non_negative(_inst: object, attr: attrs.Attribute[Any], value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise InvariantViolation(f"{attr.name} must be a finite Decimal >= 0; got {value!r}")


def _optional_non_negative(inst: object, attr: attrs.Attribute[Any], value: Decimal | None) -> None:
    if value is not None:
        _non_negative(inst, attr, value)


def _non_empty(_inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvariantViolation(f"{attr.name} must be a non-empty string; got {value!r}")


# --------------------------------------------------------------------------------------------------------
# Events


@attrs.frozen(kw_only=True)
class Submitted:
    """We are about to put the order on the wire (journal this before the POST)."""


@attrs.frozen(kw_only=True)
class Accepted:
    """The exchange acknowledged the order (REST response or WS ``orderAccepted``)."""

    exchange_order_id: str = attrs.field(validator=_non_empty)


@attrs.frozen(kw_only=True)
class FillEvent:
    """One trade against this order (WS ``orderFill`` or fills history). ``trade_id`` is unique per symbol."""

    trade_id: str = attrs.field(validator=_non_empty)
    qty: Decimal = attrs.field(validator=_positive)
    price: Decimal = attrs.field(validator=_positive)
    fee: Decimal = attrs.field(validator=_non_negative)
    fee_asset: str
    is_maker: bool
    ts_ms: int
    exchange_order_id: str | None = None

    def same_trade(self, other: FillEvent) -> bool:
        """True when ``other`` reports the same trade with the same economics (a harmless repeat)."""
        return (self.trade_id, self.qty, self.price, self.fee, self.fee_asset, self.is_maker) == (
            other.trade_id, other.qty, other.price, other.fee, other.fee_asset, other.is_maker
        )


@attrs.frozen(kw_only=True)
class Cancelled:
    """The exchange cancelled the order (our cancel, cancel-all, or its own doing), or we withdrew a NEW one."""

    executed_qty: Decimal | None = attrs.field(default=None, validator=_optional_non_negative)
    exchange_order_id: str | None = None


@attrs.frozen(kw_only=True)
class Expired:
    """The exchange expired the order's remainder (``expiryReason`` / WS ``R``)."""

    reason: str
    executed_qty: Decimal | None = attrs.field(default=None, validator=_optional_non_negative)
    exchange_order_id: str | None = None


@attrs.frozen(kw_only=True)
class Rejected:
    """The exchange refused the submit with an error body (never created on the book)."""

    code: str
    message: str


@attrs.frozen(kw_only=True)
class TimedOut:
    """The submit (or a lookup) got no answer in time: the order may or may not exist."""


_LOOKUP_KINDS: dict[Status, EventType] = {
    Status.ACKNOWLEDGED: EventType.LOOKUP_OPEN,
    Status.PARTIALLY_FILLED: EventType.LOOKUP_PARTIAL,
    Status.FILLED: EventType.LOOKUP_FILLED,
    Status.CANCELLED: EventType.LOOKUP_CANCELLED,
    Status.EXPIRED: EventType.LOOKUP_EXPIRED,
}


def _lookup_status(_inst: object, _attr: attrs.Attribute[Any], value: Status) -> None:
    if value not in _LOOKUP_KINDS:
        raise InvariantViolation(
            f"a lookup reports one of {', '.join(s.value for s in _LOOKUP_KINDS)}; got {value!r}"
        )


@attrs.frozen(kw_only=True)
class LookupFound:
    """A query by clientId (open orders or order history) found the order in ``status``."""

    status: Status = attrs.field(validator=_lookup_status)
    executed_qty: Decimal = attrs.field(validator=_non_negative)
    exchange_order_id: str = attrs.field(validator=_non_empty)
    executed_quote_qty: Decimal | None = attrs.field(default=None, validator=_optional_non_negative)


@attrs.frozen(kw_only=True)
class LookupNotFound:
    """A definitive lookup found no order with this clientId, neither open nor in history.

    Definitive means: queried after the signed request's ``timestamp + window`` had passed, so the exchange
    can no longer accept it. Only then may the caller conclude that the attempt never reached the book.
    """


OrderEvent = (
    Submitted | Accepted | FillEvent | Cancelled | Expired | Rejected | TimedOut | LookupFound | LookupNotFound
)


# --------------------------------------------------------------------------------------------------------
# The table

_S = Status
_E = EventType

TRANSITIONS: dict[tuple[Status, EventType], Status] = {
    # NEW: journaled, not sent.
    (_S.NEW, _E.SUBMITTED): _S.SENT,
    (_S.NEW, _E.CANCELLED): _S.CANCELLED,  # withdrawn before sending (risk veto, or found unsent after a restart)
    # SENT: the exchange may or may not have it.
    (_S.SENT, _E.ACCEPTED): _S.ACKNOWLEDGED,
    (_S.SENT, _E.FILL_PARTIAL): _S.PARTIALLY_FILLED,  # WS orderFill can arrive before the REST response
    (_S.SENT, _E.FILL_COMPLETE): _S.FILLED,  # same race: an IOC fully filled, WS first
    (_S.SENT, _E.CANCELLED): _S.CANCELLED,  # WS orderCancelled before the REST response (cancel by clientId, STP)
    (_S.SENT, _E.EXPIRED): _S.EXPIRED,  # an IOC that found nothing comes back Expired, possibly WS first
    (_S.SENT, _E.REJECTED): _S.REJECTED,
    (_S.SENT, _E.TIMED_OUT): _S.UNKNOWN,
    # Lookups from SENT: reconciliation after a restart that interrupted the submit.
    (_S.SENT, _E.LOOKUP_OPEN): _S.ACKNOWLEDGED,
    (_S.SENT, _E.LOOKUP_PARTIAL): _S.PARTIALLY_FILLED,
    (_S.SENT, _E.LOOKUP_FILLED): _S.FILLED,
    (_S.SENT, _E.LOOKUP_CANCELLED): _S.CANCELLED,
    (_S.SENT, _E.LOOKUP_EXPIRED): _S.EXPIRED,
    (_S.SENT, _E.LOOKUP_NOT_FOUND): _S.REJECTED,
    # UNKNOWN: resolved by a lookup or by any exchange event that proves the order's fate.
    (_S.UNKNOWN, _E.ACCEPTED): _S.ACKNOWLEDGED,  # WS orderAccepted arriving after our submit timed out
    (_S.UNKNOWN, _E.FILL_PARTIAL): _S.PARTIALLY_FILLED,  # a fill proves the timed-out order reached the book
    (_S.UNKNOWN, _E.FILL_COMPLETE): _S.FILLED,
    (_S.UNKNOWN, _E.CANCELLED): _S.CANCELLED,
    (_S.UNKNOWN, _E.EXPIRED): _S.EXPIRED,
    (_S.UNKNOWN, _E.TIMED_OUT): _S.UNKNOWN,  # the lookup itself timed out; try again later
    (_S.UNKNOWN, _E.LOOKUP_OPEN): _S.ACKNOWLEDGED,
    (_S.UNKNOWN, _E.LOOKUP_PARTIAL): _S.PARTIALLY_FILLED,
    (_S.UNKNOWN, _E.LOOKUP_FILLED): _S.FILLED,
    (_S.UNKNOWN, _E.LOOKUP_CANCELLED): _S.CANCELLED,
    (_S.UNKNOWN, _E.LOOKUP_EXPIRED): _S.EXPIRED,
    (_S.UNKNOWN, _E.LOOKUP_NOT_FOUND): _S.REJECTED,
    # ACKNOWLEDGED: resting on the book.
    (_S.ACKNOWLEDGED, _E.ACCEPTED): _S.ACKNOWLEDGED,  # both the REST response and WS orderAccepted report it
    (_S.ACKNOWLEDGED, _E.FILL_PARTIAL): _S.PARTIALLY_FILLED,
    (_S.ACKNOWLEDGED, _E.FILL_COMPLETE): _S.FILLED,
    (_S.ACKNOWLEDGED, _E.CANCELLED): _S.CANCELLED,
    (_S.ACKNOWLEDGED, _E.EXPIRED): _S.EXPIRED,
    (_S.ACKNOWLEDGED, _E.TIMED_OUT): _S.ACKNOWLEDGED,  # WS acked it before the REST call timed out: it exists
    (_S.ACKNOWLEDGED, _E.LOOKUP_OPEN): _S.ACKNOWLEDGED,
    (_S.ACKNOWLEDGED, _E.LOOKUP_PARTIAL): _S.PARTIALLY_FILLED,
    (_S.ACKNOWLEDGED, _E.LOOKUP_FILLED): _S.FILLED,
    (_S.ACKNOWLEDGED, _E.LOOKUP_CANCELLED): _S.CANCELLED,
    (_S.ACKNOWLEDGED, _E.LOOKUP_EXPIRED): _S.EXPIRED,
    # PARTIALLY_FILLED
    (_S.PARTIALLY_FILLED, _E.ACCEPTED): _S.PARTIALLY_FILLED,  # WS fills arrived before the REST response
    (_S.PARTIALLY_FILLED, _E.FILL_PARTIAL): _S.PARTIALLY_FILLED,
    (_S.PARTIALLY_FILLED, _E.FILL_COMPLETE): _S.FILLED,
    (_S.PARTIALLY_FILLED, _E.CANCELLED): _S.CANCELLED,
    (_S.PARTIALLY_FILLED, _E.EXPIRED): _S.EXPIRED,  # the unfilled remainder of an IOC
    (_S.PARTIALLY_FILLED, _E.TIMED_OUT): _S.PARTIALLY_FILLED,  # WS fills arrived, then the REST call timed out
    (_S.PARTIALLY_FILLED, _E.LOOKUP_OPEN): _S.PARTIALLY_FILLED,  # snapshot older than the fills we hold
    (_S.PARTIALLY_FILLED, _E.LOOKUP_PARTIAL): _S.PARTIALLY_FILLED,
    (_S.PARTIALLY_FILLED, _E.LOOKUP_FILLED): _S.FILLED,
    (_S.PARTIALLY_FILLED, _E.LOOKUP_CANCELLED): _S.CANCELLED,
    (_S.PARTIALLY_FILLED, _E.LOOKUP_EXPIRED): _S.EXPIRED,
    # FILLED: absorbing. Trades may still arrive after a status that said Filled (REST response, lookup).
    (_S.FILLED, _E.ACCEPTED): _S.FILLED,  # WS fills completed it before the REST response arrived
    (_S.FILLED, _E.FILL_PARTIAL): _S.FILLED,  # the lookup said Filled before the trades reached us
    (_S.FILLED, _E.FILL_COMPLETE): _S.FILLED,
    (_S.FILLED, _E.TIMED_OUT): _S.FILLED,  # WS settled it before the REST call timed out
    (_S.FILLED, _E.LOOKUP_OPEN): _S.FILLED,  # lookup snapshot older than the final fill
    (_S.FILLED, _E.LOOKUP_PARTIAL): _S.FILLED,
    (_S.FILLED, _E.LOOKUP_FILLED): _S.FILLED,
    # CANCELLED: absorbing except that a trade completing the order wins.
    (_S.CANCELLED, _E.ACCEPTED): _S.CANCELLED,  # WS orderCancelled arrived before the submit's REST response
    (_S.CANCELLED, _E.FILL_PARTIAL): _S.CANCELLED,  # a fill that raced our cancel, reported after it
    (_S.CANCELLED, _E.FILL_COMPLETE): _S.FILLED,  # the last fill raced our cancel: the trade is the fact
    (_S.CANCELLED, _E.CANCELLED): _S.CANCELLED,  # the cancel response and WS orderCancelled both report it
    (_S.CANCELLED, _E.TIMED_OUT): _S.CANCELLED,
    (_S.CANCELLED, _E.LOOKUP_OPEN): _S.CANCELLED,  # lookup snapshot older than the cancel
    (_S.CANCELLED, _E.LOOKUP_PARTIAL): _S.CANCELLED,
    (_S.CANCELLED, _E.LOOKUP_CANCELLED): _S.CANCELLED,
    # EXPIRED: absorbing except that a trade completing the order wins.
    (_S.EXPIRED, _E.ACCEPTED): _S.EXPIRED,  # an IOC's WS orderExpired beat its REST response
    (_S.EXPIRED, _E.FILL_PARTIAL): _S.EXPIRED,  # an IOC's Expired (REST) arrived before its fills (WS)
    (_S.EXPIRED, _E.FILL_COMPLETE): _S.FILLED,  # the expiry was reported before the trade that completed it
    (_S.EXPIRED, _E.EXPIRED): _S.EXPIRED,  # REST response and WS orderExpired both report it
    (_S.EXPIRED, _E.TIMED_OUT): _S.EXPIRED,
    (_S.EXPIRED, _E.LOOKUP_OPEN): _S.EXPIRED,
    (_S.EXPIRED, _E.LOOKUP_PARTIAL): _S.EXPIRED,
    (_S.EXPIRED, _E.LOOKUP_EXPIRED): _S.EXPIRED,
    # REJECTED: fully absorbing. A fill or an ack here means a "definitive" lookup was wrong and a retry may
    # have doubled the exposure: that must stop the engine, not be papered over.
}

del _S, _E

_FILL_STATUSES: frozenset[Status] = frozenset(
    s for (s, k) in TRANSITIONS if k in (EventType.FILL_PARTIAL, EventType.FILL_COMPLETE)
)


# --------------------------------------------------------------------------------------------------------
# The order record


@attrs.frozen(kw_only=True)
class OrderRecord:
    """One attempt of one intent, with everything we know about it. Built by :func:`new_order` /
    :func:`restore_order`, changed only by :func:`apply_event`.

    ``filled_qty``, ``filled_quote`` and ``fees`` are derived from ``fills`` at construction, so they can never
    disagree with the trades; construction also enforces the invariants (unique trade ids, filled <= qty,
    client id = CRC-32 of the attempt key, no fills before the order could have reached the exchange).
    ``reported_filled_qty`` is the largest cumulative quantity the exchange reported (lookup, cancel/expiry
    payload); it may run ahead of ``filled_qty`` until the trades themselves arrive.
    """

    intent_id: str = attrs.field(validator=_non_empty)
    attempt: int
    client_id: int
    symbol: str = attrs.field(validator=_non_empty)
    side: Side
    qty: Decimal = attrs.field(validator=_positive)
    limit_price: Decimal | None
    created_ms: int
    status: Status = Status.NEW
    exchange_order_id: str | None = None
    reported_filled_qty: Decimal = attrs.field(default=_ZERO, validator=_non_negative)
    reason: str | None = None
    fills: tuple[FillEvent, ...] = ()
    filled_qty: Decimal = attrs.field(init=False)
    filled_quote: Decimal = attrs.field(init=False)
    fees: tuple[tuple[str, Decimal], ...] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.client_id < _UINT32:
            raise InvariantViolation(f"client_id must be a uint32; got {self.client_id}")
        if self.client_id != client_id_for(self.intent_id, self.attempt):
            raise InvariantViolation(
                f"client_id {self.client_id} is not the id of {self.intent_id!r} attempt {self.attempt}"
            )
        if self.limit_price is not None:
            _positive(self, attrs.fields(OrderRecord).limit_price, self.limit_price)
        filled = _ZERO
        quote = _ZERO
        fees: dict[str, Decimal] = {}
        seen: set[str] = set()
        for fill in self.fills:
            if fill.trade_id in seen:
                raise InvariantViolation(f"order {self.client_id}: trade {fill.trade_id} counted twice")
            seen.add(fill.trade_id)
            filled += fill.qty
            quote += fill.qty * fill.price
            fees[fill.fee_asset] = fees.get(fill.fee_asset, _ZERO) + fill.fee
        if filled > self.qty:
            raise InvariantViolation(f"order {self.client_id}: filled {filled} exceeds quantity {self.qty}")
        if self.reported_filled_qty > self.qty:
            raise InvariantViolation(
                f"order {self.client_id}: exchange reports {self.reported_filled_qty} filled of {self.qty}"
            )
        if self.fills and self.status not in _FILL_STATUSES:
            raise InvariantViolation(f"order {self.client_id}: fills in status {self.status.value}")
        if filled == self.qty and self.status is not Status.FILLED:
            raise InvariantViolation(f"order {self.client_id}: fully filled but {self.status.value}")
        object.__setattr__(self, "filled_qty", filled)
        object.__setattr__(self, "filled_quote", quote)
        object.__setattr__(self, "fees", tuple(sorted(fees.items())))

    @property
    def is_open(self) -> bool:
        """Not terminal: the order may still change on the exchange (or may not exist yet)."""
        return self.status in OPEN_STATUSES

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def avg_price(self) -> Decimal | None:
        """Quantity-weighted average fill price, or None before the first fill."""
        return self.filled_quote / self.filled_qty if self.filled_qty else None

    @property
    def trade_ids(self) -> frozenset[str]:
        return frozenset(f.trade_id for f in self.fills)

    def fill_for(self, trade_id: str) -> FillEvent | None:
        """The fill with this trade id, if seen."""
        for fill in self.fills:
            if fill.trade_id == trade_id:
                return fill
        return None

    def fee_total(self, asset: str) -> Decimal:
        return dict(self.fees).get(asset, _ZERO)


def new_order(
    *,
    intent_id: str,
    attempt: int,
    symbol: str,
    side: Side,
    qty: Decimal,
    limit_price: Decimal | None,
    created_ms: int,
) -> OrderRecord:
    """A fresh attempt in status NEW, with its deterministic client id."""
    return OrderRecord(
        intent_id=intent_id,
        attempt=attempt,
        client_id=client_id_for(intent_id, attempt),
        symbol=symbol,
        side=side,
        qty=qty,
        limit_price=limit_price,
        created_ms=created_ms,
    )


def restore_order(
    *,
    intent_id: str,
    attempt: int,
    client_id: int,
    symbol: str,
    side: Side,
    qty: Decimal,
    limit_price: Decimal | None,
    created_ms: int,
    status: Status,
    exchange_order_id: str | None,
    reported_filled_qty: Decimal,
    reason: str | None,
    fills: Iterable[FillEvent],
) -> OrderRecord:
    """Rebuild a record from persisted fields (the journal); the invariants are re-checked."""
    return OrderRecord(
        intent_id=intent_id,
        attempt=attempt,
        client_id=client_id,
        symbol=symbol,
        side=side,
        qty=qty,
        limit_price=limit_price,
        created_ms=created_ms,
        status=status,
        exchange_order_id=exchange_order_id,
        reported_filled_qty=reported_filled_qty,
        reason=reason,
        fills=tuple(fills),
    )


# --------------------------------------------------------------------------------------------------------
# Applying events


@attrs.frozen(kw_only=True)
class Outcome:
    """Result of :func:`apply_event`. ``duplicate`` means a repeated trade: nothing changed, journal nothing."""

    order: OrderRecord
    previous: Status
    kind: EventType | None
    duplicate: bool = False

    @property
    def changed(self) -> bool:
        return not self.duplicate


def event_kind(order: OrderRecord, event: OrderEvent) -> EventType:
    """Classify ``event`` for the table, given the order it applies to.

    Raises InvariantViolation if a new fill would take the filled quantity past the order quantity.
    """
    match event:
        case Submitted():
            return EventType.SUBMITTED
        case Accepted():
            return EventType.ACCEPTED
        case FillEvent():
            total = order.filled_qty + event.qty
            if total > order.qty:
                raise InvariantViolation(
                    f"order {order.client_id}: trade {event.trade_id} would fill {total} of {order.qty}"
                )
            return EventType.FILL_COMPLETE if total == order.qty else EventType.FILL_PARTIAL
        case Cancelled():
            return EventType.CANCELLED
        case Expired():
            return EventType.EXPIRED
        case Rejected():
            return EventType.REJECTED
        case TimedOut():
            return EventType.TIMED_OUT
        case LookupFound():
            return _LOOKUP_KINDS[event.status]
        case LookupNotFound():
            return EventType.LOOKUP_NOT_FOUND
        case _:
            raise InvariantViolation(f"not an order event: {event!r}")


def _adopt_exchange_id(order: OrderRecord, exchange_order_id: str | None) -> str | None:
    if exchange_order_id is None or exchange_order_id == order.exchange_order_id:
        return order.exchange_order_id
    if order.exchange_order_id is not None:
        raise InvariantViolation(
            f"order {order.client_id}: exchange id {exchange_order_id} != known {order.exchange_order_id}"
        )
    return exchange_order_id


def _reported(order: OrderRecord, executed: Decimal | None) -> Decimal:
    if executed is None:
        return order.reported_filled_qty
    if executed > order.qty:
        raise InvariantViolation(f"order {order.client_id}: exchange reports {executed} filled of {order.qty}")
    return max(order.reported_filled_qty, executed)


def apply_event(order: OrderRecord, event: OrderEvent) -> Outcome:
    """Apply one event to one order: the only way an order's status changes.

    Raises InvalidTransition when the table has no entry for (status, kind), and InvariantViolation for
    impossible data (overfill, conflicting exchange ids, a trade id repeated with different values).
    """
    if isinstance(event, FillEvent):
        seen = order.fill_for(event.trade_id)
        if seen is not None:
            if not seen.same_trade(event):
                raise InvariantViolation(
                    f"order {order.client_id}: trade {event.trade_id} reported twice with different values"
                )
            return Outcome(order=order, previous=order.status, kind=None, duplicate=True)
        if order.status not in _FILL_STATUSES:
            # Checked before the overfill test so that a fill in NEW/REJECTED is always an InvalidTransition.
            raise InvalidTransition(order.status, EventType.FILL_PARTIAL, order.client_id)
    kind = event_kind(order, event)
    target = TRANSITIONS.get((order.status, kind))
    if target is None:
        raise InvalidTransition(order.status, kind, order.client_id)
    changes: dict[str, Any] = {"status": target}
    match event:
        case Accepted():
            changes["exchange_order_id"] = _adopt_exchange_id(order, event.exchange_order_id)
        case FillEvent():
            fills = (*order.fills, event)
            changes["fills"] = fills
            changes["exchange_order_id"] = _adopt_exchange_id(order, event.exchange_order_id)
            changes["reported_filled_qty"] = max(order.reported_filled_qty, order.filled_qty + event.qty)
        case Cancelled():
            changes["exchange_order_id"] = _adopt_exchange_id(order, event.exchange_order_id)
            changes["reported_filled_qty"] = _reported(order, event.executed_qty)
        case Expired():
            changes["exchange_order_id"] = _adopt_exchange_id(order, event.exchange_order_id)
            changes["reported_filled_qty"] = _reported(order, event.executed_qty)
            changes["reason"] = event.reason
        case Rejected():
            changes["reason"] = f"{event.code}: {event.message}"
        case LookupFound():
            changes["exchange_order_id"] = _adopt_exchange_id(order, event.exchange_order_id)
            changes["reported_filled_qty"] = _reported(order, event.executed_qty)
        case LookupNotFound():
            changes["reason"] = "not found on the exchange"
        case Submitted() | TimedOut():
            pass
        case _:
            raise InvariantViolation(f"not an order event: {event!r}")
    return Outcome(order=attrs.evolve(order, **changes), previous=order.status, kind=kind)


_EXCHANGE_STATUS: dict[str, Status] = {
    "New": Status.ACKNOWLEDGED,
    "PartiallyFilled": Status.PARTIALLY_FILLED,
    "Filled": Status.FILLED,
    "Cancelled": Status.CANCELLED,
    "Expired": Status.EXPIRED,
}


def status_from_exchange(text: str) -> Status:
    """Map Backpack's order ``status`` / WS ``X`` to ours (for :class:`LookupFound`).

    Trigger statuses are not mapped: this engine never places trigger orders, so meeting one under our
    client id is a protocol surprise.
    """
    try:
        return _EXCHANGE_STATUS[text]
    except KeyError:
        raise RemoteProtocolError(f"unsupported order status {text!r}") from None


# --------------------------------------------------------------------------------------------------------
# Many orders


class OrderTracker:
    """The live orders, keyed by client id and (once known) exchange order id.

    Every change goes through :func:`apply_event`; the tracker only keeps the indexes right. Invariants:
    one record per client id (a CRC-32 collision between two attempts is refused, not overwritten), and an
    exchange id maps to exactly one client id.
    """

    def __init__(self, orders: Iterable[OrderRecord] = ()) -> None:
        self._by_client: dict[int, OrderRecord] = {}
        self._by_exchange: dict[str, int] = {}
        for order in orders:
            self.add(order)

    def __len__(self) -> int:
        return len(self._by_client)

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._by_client

    def __iter__(self) -> Iterator[OrderRecord]:
        return iter(list(self._by_client.values()))

    def add(self, order: OrderRecord) -> None:
        """Track a new attempt (fresh from :func:`new_order` or restored from the journal)."""
        known = self._by_client.get(order.client_id)
        if known is not None:
            raise InvariantViolation(
                f"client id {order.client_id} already tracked for {known.intent_id!r} attempt {known.attempt}"
            )
        self._index_exchange_id(order)
        self._by_client[order.client_id] = order

    def apply(self, client_id: int, event: OrderEvent) -> Outcome:
        """Apply ``event`` to the order with ``client_id`` and keep the result."""
        order = self._by_client.get(client_id)
        if order is None:
            raise InvariantViolation(f"event for untracked client id {client_id}: {event!r}")
        outcome = apply_event(order, event)
        if outcome.changed:
            self._index_exchange_id(outcome.order)
            self._by_client[client_id] = outcome.order
        return outcome

    def get(self, client_id: int) -> OrderRecord | None:
        return self._by_client.get(client_id)

    def find_by_exchange_id(self, exchange_order_id: str) -> OrderRecord | None:
        client_id = self._by_exchange.get(exchange_order_id)
        return None if client_id is None else self._by_client[client_id]

    def orders(self) -> list[OrderRecord]:
        return list(self._by_client.values())

    def open_orders(self) -> list[OrderRecord]:
        return [o for o in self._by_client.values() if o.is_open]

    def forget(self, client_id: int) -> OrderRecord:
        """Drop a terminal order from memory (it stays in the journal); open orders cannot be forgotten."""
        order = self._by_client.get(client_id)
        if order is None:
            raise InvariantViolation(f"forget: untracked client id {client_id}")
        if order.is_open:
            raise InvariantViolation(f"forget: order {client_id} is still {order.status.value}")
        del self._by_client[client_id]
        if order.exchange_order_id is not None:
            self._by_exchange.pop(order.exchange_order_id, None)
        return order

    def _index_exchange_id(self, order: OrderRecord) -> None:
        if order.exchange_order_id is None:
            return
        owner = self._by_exchange.get(order.exchange_order_id)
        if owner is not None and owner != order.client_id:
            raise InvariantViolation(
                f"exchange id {order.exchange_order_id} claimed by client ids {owner} and {order.client_id}"
            )
        self._by_exchange[order.exchange_order_id] = order.client_id
