"""The order state machine: the table is total and agrees with the model, the documented races, fill rules."""

from __future__ import annotations

import itertools
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InvariantViolation, RemoteProtocolError
from engine.orders.fsm import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    TRANSITIONS,
    Accepted,
    Cancelled,
    EventType,
    Expired,
    FillEvent,
    InvalidTransition,
    LookupFound,
    LookupNotFound,
    OrderEvent,
    OrderRecord,
    OrderTracker,
    Rejected,
    Side,
    Status,
    Submitted,
    TimedOut,
    apply_event,
    new_order,
    status_from_exchange,
)
from engine.orders.ids import client_id_for
from tests.orders.model import SETTLED, expected_target
from tests.orders.strategies import fill, fill_events, make_event, order_in

ALL_PAIRS = list(itertools.product(Status, EventType))


def run(order: OrderRecord, *events: OrderEvent) -> OrderRecord:
    for event in events:
        order = apply_event(order, event).order
    return order


def sent(qty: str = "1") -> OrderRecord:
    return run(order_in(Status.NEW, qty=Decimal(qty)), Submitted())


@pytest.mark.parametrize(("status", "kind"), ALL_PAIRS, ids=[f"{s.value}-{k.value}" for s, k in ALL_PAIRS])
def test_every_pair_is_a_transition_or_refused(status: Status, kind: EventType) -> None:
    """Each (status, event type) either moves to TRANSITIONS[pair] or raises InvalidTransition, and nothing
    else; a refused event leaves the record untouched."""
    order = order_in(status)
    event = make_event(kind, order)
    target = TRANSITIONS.get((status, kind))
    if target is None:
        with pytest.raises(InvalidTransition) as info:
            apply_event(order, event)
        assert info.value.status is status
        assert info.value.client_id == order.client_id
    else:
        outcome = apply_event(order, event)
        assert outcome.kind is kind
        assert outcome.order.status is target
        assert outcome.previous is status


@pytest.mark.parametrize(("status", "kind"), ALL_PAIRS, ids=[f"{s.value}-{k.value}" for s, k in ALL_PAIRS])
def test_table_agrees_with_model(status: Status, kind: EventType) -> None:
    """The table and the independently written rule model give the same answer for every pair."""
    assert TRANSITIONS.get((status, kind)) == expected_target(status, kind)


def test_invalid_transition_is_an_invariant_violation() -> None:
    """InvalidTransition belongs to the engine's error tree as an InvariantViolation (fatal: a bug)."""
    assert issubclass(InvalidTransition, InvariantViolation)


def test_terminal_states_absorb_except_documented_races() -> None:
    """From a terminal status the only status change in the table is CANCELLED/EXPIRED -> FILLED on the
    trade that completes the order; REJECTED accepts nothing at all."""
    changes = {(s, k): t for (s, k), t in TRANSITIONS.items() if s in TERMINAL_STATUSES and t is not s}
    assert changes == {
        (Status.CANCELLED, EventType.FILL_COMPLETE): Status.FILLED,
        (Status.EXPIRED, EventType.FILL_COMPLETE): Status.FILLED,
    }
    assert not [pair for pair in TRANSITIONS if pair[0] is Status.REJECTED]


def test_statuses_partition() -> None:
    """Every status is either open or terminal, never both."""
    assert set(Status) == OPEN_STATUSES | TERMINAL_STATUSES
    assert not OPEN_STATUSES & TERMINAL_STATUSES


def test_only_lookup_or_exchange_news_leaves_unknown() -> None:
    """UNKNOWN never goes back to SENT and cannot be resubmitted: no SUBMITTED edge leaves it."""
    assert (Status.UNKNOWN, EventType.SUBMITTED) not in TRANSITIONS
    assert Status.SENT not in {t for (s, _k), t in TRANSITIONS.items() if s is Status.UNKNOWN}


# ---------------------------------------------------------------------------------------------------------
# The odd but real sequences


def test_ws_fill_before_rest_response() -> None:
    """A WS fill that beats the REST response moves SENT to PARTIALLY_FILLED; the late ack keeps it there."""
    order = run(sent("1"), fill("1", Decimal("0.4")), Accepted(exchange_order_id="E1"))
    assert order.status is Status.PARTIALLY_FILLED
    assert order.exchange_order_id == "E1"
    assert order.filled_qty == Decimal("0.4")


def test_fill_racing_a_cancel() -> None:
    """A fill reported after our cancel is counted and the order stays CANCELLED."""
    order = run(sent("1"), Accepted(exchange_order_id="E1"), Cancelled(executed_qty=Decimal("0.3")),
                fill("1", Decimal("0.3")))
    assert order.status is Status.CANCELLED
    assert order.filled_qty == Decimal("0.3")
    assert order.reported_filled_qty == Decimal("0.3")


def test_last_fill_racing_a_cancel_wins() -> None:
    """A trade that completes the order after a Cancelled report makes it FILLED: trades are facts."""
    order = run(sent("1"), Cancelled(), fill("1", Decimal("1")))
    assert order.status is Status.FILLED


def test_ioc_expired_before_its_fills() -> None:
    """An IOC's Expired (REST) can arrive before its fills (WS): the fills still count, status stays EXPIRED."""
    order = run(sent("1"), Expired(reason="ImmediateOrCancel", executed_qty=Decimal("0.6")),
                fill("1", Decimal("0.25")), fill("2", Decimal("0.35")))
    assert order.status is Status.EXPIRED
    assert order.filled_qty == Decimal("0.6")
    assert order.reason == "ImmediateOrCancel"


def test_timeout_then_lookup_resolves_unknown() -> None:
    """A submit timeout makes the order UNKNOWN; a lookup by clientId resolves it to what the exchange has."""
    unknown = run(sent("1"), TimedOut())
    assert unknown.status is Status.UNKNOWN
    found = run(unknown, LookupFound(status=Status.PARTIALLY_FILLED, executed_qty=Decimal("0.5"),
                                     exchange_order_id="E9"))
    assert found.status is Status.PARTIALLY_FILLED
    assert found.reported_filled_qty == Decimal("0.5")
    assert found.filled_qty == 0  # only trades count; the lookup's quantity is a report
    gone = run(unknown, LookupNotFound())
    assert gone.status is Status.REJECTED


def test_lookup_filled_before_trades_arrive() -> None:
    """A lookup may say Filled before the trades reach us; the trades are then still counted."""
    order = run(sent("1"), TimedOut(), LookupFound(status=Status.FILLED, executed_qty=Decimal("1"),
                                                   exchange_order_id="E2"), fill("1", Decimal("1")))
    assert order.status is Status.FILLED
    assert order.filled_qty == Decimal("1")


def test_duplicate_rest_and_ws_reports() -> None:
    """The REST response and the WS event reporting the same ack or cancel are both accepted."""
    order = run(sent("1"), Accepted(exchange_order_id="E1"), Accepted(exchange_order_id="E1"), Cancelled(),
                Cancelled())
    assert order.status is Status.CANCELLED


def test_rejection_records_reason() -> None:
    """A rejected submit keeps the exchange's code and message."""
    order = run(sent("1"), Rejected(code="INVALID_ORDER", message="Invalid order"))
    assert order.status is Status.REJECTED
    assert order.reason == "INVALID_ORDER: Invalid order"


# ---------------------------------------------------------------------------------------------------------
# Fill rules


@settings(max_examples=60)
@given(fills=st.lists(fill_events, min_size=1, max_size=8, unique_by=lambda f: f.trade_id),
       repeats=st.lists(st.integers(0, 7), max_size=8))
def test_duplicates_never_double_count(fills: list[FillEvent], repeats: list[int]) -> None:
    """Replaying any already-seen trade is a no-op: filled qty, quote and fees are the sums over distinct
    trades."""
    qty = sum((f.qty for f in fills), Decimal(0)) * 2
    order = sent(str(qty))
    for f in fills:
        order = apply_event(order, f).order
    for index in repeats:
        outcome = apply_event(order, fills[index % len(fills)])
        assert outcome.duplicate
        assert outcome.order is order
    assert order.filled_qty == sum(f.qty for f in fills)
    assert order.filled_quote == sum(f.qty * f.price for f in fills)
    assert order.fee_total("USDC") == sum(f.fee for f in fills)
    assert order.trade_ids == {f.trade_id for f in fills}
    assert order.avg_price == order.filled_quote / order.filled_qty


def test_overfill_is_an_invariant_violation() -> None:
    """A trade that would take the filled quantity past the order quantity is refused, state unchanged."""
    order = run(sent("1"), fill("1", Decimal("0.7")))
    with pytest.raises(InvariantViolation, match="would fill"):
        apply_event(order, fill("2", Decimal("0.4")))
    assert order.filled_qty == Decimal("0.7")


def test_same_trade_id_with_other_values() -> None:
    """A trade id repeated with a different quantity is an invariant violation, not a new or repeated fill."""
    order = run(sent("1"), fill("1", Decimal("0.2")))
    with pytest.raises(InvariantViolation, match="different values"):
        apply_event(order, fill("1", Decimal("0.3")))


@pytest.mark.parametrize("status", [Status.NEW, Status.REJECTED])
def test_fill_where_no_order_can_exist(status: Status) -> None:
    """A fill on an unsent or rejected attempt is an InvalidTransition, even when it would also overfill."""
    order = order_in(status)
    with pytest.raises(InvalidTransition):
        apply_event(order, fill("1", Decimal("100")))


def test_exchange_id_cannot_change() -> None:
    """Once known, an order's exchange id never changes; a conflicting report is an invariant violation."""
    order = run(sent("1"), Accepted(exchange_order_id="E1"))
    with pytest.raises(InvariantViolation, match="exchange id"):
        apply_event(order, Cancelled(exchange_order_id="E2"))


def test_reported_quantity_cannot_exceed_order() -> None:
    """An exchange report of more executed quantity than ordered is an invariant violation."""
    order = run(sent("1"), TimedOut())
    with pytest.raises(InvariantViolation):
        apply_event(order, LookupFound(status=Status.FILLED, executed_qty=Decimal("2"), exchange_order_id="E"))


def test_record_construction_checks_invariants() -> None:
    """An OrderRecord whose client id is not its attempt's CRC, or that is fully filled but not FILLED,
    cannot be built."""
    order = order_in(Status.NEW)
    with pytest.raises(InvariantViolation, match="client_id"):
        attrs.evolve(order, client_id=order.client_id ^ 1)
    with pytest.raises(InvariantViolation, match="fully filled"):
        attrs.evolve(order_in(Status.PARTIALLY_FILLED, qty=Decimal("10")), fills=(fill("a", Decimal("10")),))


@pytest.mark.parametrize(
    "build",
    [
        lambda: fill("1", Decimal("0")),
        lambda: fill("1", Decimal("-1")),
        lambda: fill("", Decimal("1")),
        lambda: FillEvent(trade_id="1", qty=Decimal("1"), price=Decimal("NaN"), fee=Decimal(0), fee_asset="X",
                          is_maker=True, ts_ms=0),
        lambda: LookupFound(status=Status.SENT, executed_qty=Decimal(0), exchange_order_id="E"),
        lambda: Accepted(exchange_order_id=""),
    ],
)
def test_bad_event_values_are_refused(build: object) -> None:
    """Events with non-positive quantities, NaN prices, empty ids or impossible lookup statuses cannot exist."""
    assert callable(build)
    with pytest.raises(InvariantViolation):
        build()


def test_exchange_status_mapping() -> None:
    """Backpack's order statuses map onto ours; an unsupported one is a RemoteProtocolError."""
    assert status_from_exchange("New") is Status.ACKNOWLEDGED
    assert status_from_exchange("PartiallyFilled") is Status.PARTIALLY_FILLED
    assert status_from_exchange("Filled") is Status.FILLED
    assert status_from_exchange("Cancelled") is Status.CANCELLED
    assert status_from_exchange("Expired") is Status.EXPIRED
    with pytest.raises(RemoteProtocolError):
        status_from_exchange("TriggerPending")


# ---------------------------------------------------------------------------------------------------------
# Tracker


def test_tracker_indexes_and_forgets() -> None:
    """The tracker finds orders by client and exchange id and forgets only terminal ones."""
    order = new_order(intent_id="i", attempt=0, symbol="BTC_USDC", side=Side.SELL, qty=Decimal("1"),
                      limit_price=None, created_ms=0)
    tracker = OrderTracker([order])
    cid = order.client_id
    tracker.apply(cid, Submitted())
    tracker.apply(cid, Accepted(exchange_order_id="E7"))
    found = tracker.find_by_exchange_id("E7")
    assert found is not None
    assert found.client_id == cid
    assert [o.client_id for o in tracker.open_orders()] == [cid]
    with pytest.raises(InvariantViolation, match="still"):
        tracker.forget(cid)
    tracker.apply(cid, Cancelled())
    assert tracker.open_orders() == []
    tracker.forget(cid)
    assert cid not in tracker
    assert tracker.find_by_exchange_id("E7") is None


def test_tracker_refuses_second_record_for_a_client_id() -> None:
    """Adding an attempt whose client id is already tracked is refused rather than overwriting it."""
    order = order_in(Status.NEW)
    tracker = OrderTracker([order])
    with pytest.raises(InvariantViolation, match="already tracked"):
        tracker.add(order)


def test_tracker_refuses_shared_exchange_id() -> None:
    """Two attempts claiming one exchange order id is an invariant violation."""
    first = run(order_in(Status.NEW, intent_id="a"), Submitted())
    second = run(order_in(Status.NEW, intent_id="b"), Submitted())
    tracker = OrderTracker([first, second])
    tracker.apply(first.client_id, Accepted(exchange_order_id="E"))
    with pytest.raises(InvariantViolation, match="claimed"):
        tracker.apply(second.client_id, Accepted(exchange_order_id="E"))


def test_tracker_refuses_untracked_client_id() -> None:
    """An event for a client id the tracker does not hold is an invariant violation."""
    with pytest.raises(InvariantViolation, match="untracked"):
        OrderTracker().apply(client_id_for("nobody", 0), TimedOut())


def test_settled_set_matches_table() -> None:
    """The model's settled statuses are exactly the terminal ones that can still see fills."""
    assert {s for (s, k) in TRANSITIONS if k is EventType.FILL_PARTIAL} & TERMINAL_STATUSES == SETTLED
