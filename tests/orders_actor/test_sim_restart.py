"""Restarts against the real simulator: the journal plus reconciliation resolve interrupted attempts exactly once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import trio

from engine.backpack.events import Side as WireSide
from engine.backpack.filters import quantize_price
from engine.orders.fsm import Side, Status, Submitted, apply_event, new_order
from engine.rest import RestClient
from engine.store.journal import Journal
from tests.orders_actor.conftest import (
    SPOT,
    intent,
    journal_at,
    last_price,
    orders_actor,
    place,
    rest_client,
    running_sim,
    wall_ms,
)


async def _orders_for(rest: RestClient, client_id: int) -> int:
    rows = await rest.signed("GET", "/wapi/v1/history/orders", {"symbol": SPOT, "limit": 1000})
    assert isinstance(rows, tuple)
    return sum(1 for r in rows if getattr(r, "client_id", None) == client_id)


def _journal_sent_attempt(journal: Journal, intent_id: str, qty: Decimal, price: Decimal) -> int:
    """What the actor writes right before its POST (the crash point of these tests)."""
    journal.record_intent(intent_id, SPOT, {"level": "61.8", "swing_key": "s1", "entry_leverage": "1"})
    order = apply_event(new_order(intent_id=intent_id, attempt=0, symbol=SPOT, side=Side.BUY, qty=qty,
                                  limit_price=price, created_ms=wall_ms()), Submitted()).order
    journal.record_attempt(order)
    return order.client_id


async def test_crash_after_send_is_resolved_on_restart_without_resending(tmp_path: Path) -> None:
    """An attempt journaled SENT and executed, whose process died: reconciliation finds it, no second order."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = quantize_price(await last_price(rest, SPOT) * Decimal("1.02"), Decimal("0.1"), WireSide.BID)
            journal = journal_at(tmp_path)
            i = intent(SPOT, Decimal("0.01"), price)
            client_id = _journal_sent_attempt(journal, i.intent_id, i.qty, price)
            await rest.signed("POST", "/api/v1/order", {
                "symbol": SPOT, "side": "Bid", "orderType": "Limit", "timeInForce": "IOC", "quantity": i.qty,
                "price": price, "clientId": client_id})
            async with orders_actor(rest, journal, SPOT, "spot") as h:
                notice = await h.fills.receive()  # from the start-up reconciliation
                assert (notice.client_id, notice.report.filled_qty) == (client_id, Decimal("0.01"))
                snap = await h.wait_reconciled()
                assert snap.position_qty > 0
                # The strategy never saw that notice before the crash and proposes the intent again.
                await h.commands.send(place(i))
                again = await h.fills.receive()
                assert (again.client_id, again.report.filled_qty) == (client_id, Decimal("0.01"))
            assert await _orders_for(rest, client_id) == 1
            assert [o.attempt for o in journal.load_orders_by_intent(i.intent_id)] == [0]
            assert sum(f.fill.qty for f in journal.fills_since(0, symbol=SPOT)) == Decimal("0.01")
            journal.close()


async def test_crash_before_send_is_proven_absent_then_retried(tmp_path: Path) -> None:
    """An attempt journaled SENT that never left: declared absent only after its window, then attempt 1 fills."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = quantize_price(await last_price(rest, SPOT) * Decimal("1.02"), Decimal("0.1"), WireSide.BID)
            journal = journal_at(tmp_path)
            i = intent(SPOT, Decimal("0.01"), price)
            started = wall_ms()
            lost_id = _journal_sent_attempt(journal, i.intent_id, i.qty, price)
            async with orders_actor(rest, journal, SPOT, "spot") as h:
                await h.wait_reconciled()
                # ack_timeout 3 s + window 2 s + 1 s skew allowance after the attempt was written.
                assert wall_ms() - started >= 6000
                lost = journal.load_order(lost_id)
                assert lost is not None
                assert lost.status is Status.REJECTED
                # The strategy learns that the interrupted attempt did not execute ...
                unsent = await h.fills.receive()
                assert (unsent.client_id, unsent.report.filled_qty, unsent.terminal_status) == (
                    lost_id, Decimal(0), "REJECTED")
                assert unsent.report.level == "61.8"
                # ... and proposes the intent again: attempt 1 gets a new client id.
                await h.commands.send(place(i))
                notice = await h.fills.receive()
            assert notice.report.filled_qty == Decimal("0.01")
            assert [(o.attempt, o.status) for o in journal.load_orders_by_intent(i.intent_id)] == [
                (0, Status.REJECTED), (1, Status.FILLED)]
            assert await _orders_for(rest, lost_id) == 0
            assert await _orders_for(rest, notice.client_id) == 1
            journal.close()


async def test_restart_after_a_fill_changes_nothing(tmp_path: Path) -> None:
    """A second actor on the same journal reconciles to the same position: no notice, no fill counted twice."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = await last_price(rest, SPOT)
            journal = journal_at(tmp_path)
            async with orders_actor(rest, journal, SPOT, "spot") as h:
                await h.wait_reconciled()
                await h.commands.send(place(intent(SPOT, Decimal("0.02"), price * Decimal("1.02"))))
                await h.fills.receive()
                before = h.account.get_nowait()[1]
            fills_before = journal.fills_since(0, symbol=SPOT)
            async with orders_actor(rest, journal, SPOT, "spot") as h:
                after = await h.wait_reconciled()
                h.reconnects.set(1)  # a feed reconnect: reconcile again
                seen = h.account.version
                while True:
                    seen, snap = await h.account.wait_changed(seen)
                    if not snap.reconciled:
                        break
                again = await h.wait_reconciled()
                with trio.move_on_after(0.5):
                    extra = await h.fills.receive()
                    raise AssertionError(f"unexpected notice after restart: {extra}")
            assert after.position_qty == again.position_qty == before.position_qty > 0
            assert after.avg_entry == before.avg_entry
            assert journal.fills_since(0, symbol=SPOT) == fills_before
            journal.close()
