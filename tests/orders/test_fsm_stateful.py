"""Stateful test: random event sequences over many orders, checked against a plain dict model."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from engine.errors import InvariantViolation
from engine.orders.fsm import (
    TERMINAL_STATUSES,
    EventType,
    FillEvent,
    InvalidTransition,
    OrderTracker,
    Side,
    Status,
    new_order,
)
from tests.orders.model import expected_target
from tests.orders.strategies import fill, make_event

NON_FILL_KINDS = [k for k in EventType if k not in (EventType.FILL_PARTIAL, EventType.FILL_COMPLETE)]
INTENTS = ["nanpin:BTC_USDC:k1:61.8", "nanpin:BTC_USDC:k1:78.6", "nanpin:SOL_USDC:k2:50.0"]
# Terminal -> different status moves the model allows (the documented fill races).
ALLOWED_TERMINAL_EXITS = {(Status.CANCELLED, Status.FILLED), (Status.EXPIRED, Status.FILLED)}


@attrs.define
class ModelOrder:
    qty: Decimal
    status: Status = Status.NEW
    fills: dict[str, FillEvent] = attrs.Factory(dict)

    @property
    def filled(self) -> Decimal:
        return sum((f.qty for f in self.fills.values()), Decimal(0))


class OrderLifecycle(RuleBasedStateMachine):
    """Orders driven by arbitrary (legal and illegal) events; the tracker must agree with the model."""

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.tracker = OrderTracker()
        self.model: dict[int, ModelOrder] = {}
        self.attempts: dict[str, int] = {}
        self.trades = 0
        self.moves: list[tuple[Status, Status]] = []

    def _expect_refused(self, cid: int, event: object, error: type[Exception]) -> None:
        before = self.tracker.get(cid)
        with pytest.raises(error):
            self.tracker.apply(cid, event)  # type: ignore[arg-type]
        assert self.tracker.get(cid) is before

    @rule(target=orders, intent=st.sampled_from(INTENTS), lots=st.integers(1, 12))
    def create(self, intent: str, lots: int) -> int:
        attempt = self.attempts.get(intent, 0)
        self.attempts[intent] = attempt + 1
        qty = Decimal(lots) / 4
        order = new_order(intent_id=intent, attempt=attempt, symbol=intent.split(":")[1], side=Side.BUY,
                          qty=qty, limit_price=Decimal("100.5"), created_ms=attempt)
        self.tracker.add(order)
        self.model[order.client_id] = ModelOrder(qty=qty)
        return order.client_id

    @rule(cid=orders, data=st.data())
    def legal_event(self, cid: int, data: st.DataObject) -> None:
        """Mostly-legal traffic, so that deep paths (ack, then timeout, then lookup ...) are reached."""
        status = self.model[cid].status
        legal = [k for k in NON_FILL_KINDS if expected_target(status, k) is not None]
        if legal:
            self.status_event(cid, data.draw(st.sampled_from(legal)))

    @rule(cid=orders, kind=st.sampled_from(NON_FILL_KINDS))
    def status_event(self, cid: int, kind: EventType) -> None:
        m = self.model[cid]
        order = self.tracker.get(cid)
        assert order is not None
        event = make_event(kind, order)
        target = expected_target(m.status, kind)
        if target is None:
            self._expect_refused(cid, event, InvalidTransition)
            return
        outcome = self.tracker.apply(cid, event)
        assert outcome.order.status is target
        self.moves.append((m.status, target))
        m.status = target

    @rule(cid=orders, lots=st.integers(1, 14))
    def new_trade(self, cid: int, lots: int) -> None:
        m = self.model[cid]
        qty = Decimal(lots) / 4
        self.trades += 1
        event = fill(f"T{self.trades}", qty, price=Decimal(100 + lots))
        remaining = m.qty - m.filled
        complete = qty == remaining
        target = expected_target(m.status, EventType.FILL_COMPLETE if complete else EventType.FILL_PARTIAL)
        if m.status in (Status.NEW, Status.REJECTED):
            self._expect_refused(cid, event, InvalidTransition)
        elif qty > remaining:
            self._expect_refused(cid, event, InvariantViolation)
        else:
            assert target is not None
            outcome = self.tracker.apply(cid, event)
            assert outcome.changed
            assert outcome.order.status is target
            self.moves.append((m.status, target))
            m.status = target
            m.fills[event.trade_id] = event

    @precondition(lambda self: any(m.fills for m in self.model.values()))
    @rule(data=st.data())
    def repeat_trade(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(sorted(c for c, m in self.model.items() if m.fills)))
        m = self.model[cid]
        trade = data.draw(st.sampled_from(sorted(m.fills)))
        before = self.tracker.get(cid)
        outcome = self.tracker.apply(cid, m.fills[trade])
        assert outcome.duplicate
        assert self.tracker.get(cid) is before

    @precondition(lambda self: any(m.fills for m in self.model.values()))
    @rule(data=st.data())
    def conflicting_trade(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(sorted(c for c, m in self.model.items() if m.fills)))
        trade = data.draw(st.sampled_from(sorted(self.model[cid].fills)))
        original = self.model[cid].fills[trade]
        self._expect_refused(cid, attrs.evolve(original, price=original.price + 1), InvariantViolation)

    @invariant()
    def filled_never_exceeds_ordered(self) -> None:
        assert all(o.filled_qty <= o.qty for o in self.tracker.orders())

    @invariant()
    def tracker_matches_model(self) -> None:
        assert len(self.tracker) == len(self.model)
        for cid, m in self.model.items():
            order = self.tracker.get(cid)
            assert order is not None
            assert order.status is m.status
            assert order.trade_ids == set(m.fills)
            # Duplicates never double count: the total is the sum over distinct trade ids.
            assert order.filled_qty == m.filled
            assert (order.filled_qty == order.qty) == (m.filled == m.qty)

    @invariant()
    def terminal_states_absorb(self) -> None:
        for before, after in self.moves:
            if before in TERMINAL_STATUSES and after is not before:
                assert (before, after) in ALLOWED_TERMINAL_EXITS
            if before is Status.REJECTED:
                raise AssertionError("an event was accepted on a REJECTED order")

    @invariant()
    def open_orders_are_the_non_terminal_ones(self) -> None:
        expected = {c for c, m in self.model.items() if m.status not in TERMINAL_STATUSES}
        assert {o.client_id for o in self.tracker.open_orders()} == expected


OrderLifecycle.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestOrderLifecycle = OrderLifecycle.TestCase
