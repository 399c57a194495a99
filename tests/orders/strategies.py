"""Hypothesis strategies and builders for order records and events (shared by the tests in this package)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from engine.orders.fsm import (
    Accepted,
    Cancelled,
    EventType,
    Expired,
    FillEvent,
    LookupFound,
    LookupNotFound,
    OrderEvent,
    OrderRecord,
    Rejected,
    Side,
    Status,
    Submitted,
    TimedOut,
    new_order,
    restore_order,
)
from engine.orders.ids import client_id_for

__all__ = [
    "fill",
    "fill_events",
    "intent_ids",
    "make_event",
    "order_in",
]

intent_ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40
)

_LOOKUP_STATUS = {
    EventType.LOOKUP_OPEN: Status.ACKNOWLEDGED,
    EventType.LOOKUP_PARTIAL: Status.PARTIALLY_FILLED,
    EventType.LOOKUP_FILLED: Status.FILLED,
    EventType.LOOKUP_CANCELLED: Status.CANCELLED,
    EventType.LOOKUP_EXPIRED: Status.EXPIRED,
}


def fill(trade_id: str, qty: Decimal, *, price: Decimal = Decimal("100"), ts_ms: int = 0) -> FillEvent:
    """A taker fill with a fee in the quote asset."""
    return FillEvent(trade_id=trade_id, qty=qty, price=price, fee=qty * price / 1000, fee_asset="USDC",
                     is_maker=False, ts_ms=ts_ms)


fill_events = st.builds(
    fill,
    trade_id=st.integers(0, 10**12).map(str),
    qty=st.integers(1, 10**6).map(lambda n: Decimal(n) / 1000),
    price=st.integers(1, 10**8).map(lambda n: Decimal(n) / 100),
    ts_ms=st.integers(0, 2**45),
)


def make_event(kind: EventType, order: OrderRecord) -> OrderEvent:
    """An event of ``kind`` that is consistent with ``order``'s data (exchange id, quantities)."""
    exchange_id = order.exchange_order_id or f"X{order.client_id}"
    remaining = order.qty - order.filled_qty
    match kind:
        case EventType.SUBMITTED:
            return Submitted()
        case EventType.ACCEPTED:
            return Accepted(exchange_order_id=exchange_id)
        case EventType.FILL_PARTIAL:
            return fill(f"t{len(order.fills)}-{order.client_id}", remaining / 2)
        case EventType.FILL_COMPLETE:
            return fill(f"t{len(order.fills)}-{order.client_id}", remaining)
        case EventType.CANCELLED:
            return Cancelled(executed_qty=order.filled_qty)
        case EventType.EXPIRED:
            return Expired(reason="ImmediateOrCancel", executed_qty=order.filled_qty)
        case EventType.REJECTED:
            return Rejected(code="INSUFFICIENT_FUNDS", message="Insufficient funds")
        case EventType.TIMED_OUT:
            return TimedOut()
        case EventType.LOOKUP_NOT_FOUND:
            return LookupNotFound()
        case _:
            status = _LOOKUP_STATUS[kind]
            executed = order.qty if status is Status.FILLED else order.filled_qty
            return LookupFound(status=status, executed_qty=executed, exchange_order_id=exchange_id)


def order_in(status: Status, *, qty: Decimal = Decimal("10"), intent_id: str = "nanpin:BTC_USDC:k:61.8",
             attempt: int = 0) -> OrderRecord:
    """An attempt in ``status`` with room for both a partial and a completing fill in every status that can
    hold fills (FILLED is reached the way a lookup reaches it: before all trades have arrived)."""
    if status is Status.NEW:
        return new_order(intent_id=intent_id, attempt=attempt, symbol="BTC_USDC", side=Side.BUY, qty=qty,
                         limit_price=Decimal("101"), created_ms=0)
    with_fill = status in (Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELLED, Status.EXPIRED)
    has_exchange_id = status not in (Status.SENT, Status.UNKNOWN, Status.REJECTED)
    return restore_order(
        intent_id=intent_id, attempt=attempt, client_id=client_id_for(intent_id, attempt), symbol="BTC_USDC",
        side=Side.BUY, qty=qty, limit_price=Decimal("101"), created_ms=0, status=status,
        exchange_order_id=f"X{client_id_for(intent_id, attempt)}" if has_exchange_id else None,
        reported_filled_qty=qty / 10 if with_fill else Decimal(0),
        reason=None, fills=[fill("t-first", qty / 10)] if with_fill else [],
    )
