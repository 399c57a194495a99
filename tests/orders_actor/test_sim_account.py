"""Account snapshot (perp), resting orphans and CancelAll against the real simulator."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import trio

from engine.backpack import Order
from engine.backpack.events import Side as WireSide
from engine.backpack.filters import quantize_price
from engine.events import CancelAll
from engine.orders.fsm import Side, Status, Submitted, apply_event, new_order
from tests.orders_actor.conftest import (
    PERP,
    SPOT,
    forward_private,
    intent,
    journal_at,
    last_price,
    orders_actor,
    place,
    rest_client,
    running_sim,
    wall_ms,
)


async def test_perp_snapshot_follows_the_exchange_position(tmp_path: Path) -> None:
    """On a perp the snapshot carries the exchange's net position and netEquity after a fill."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = await last_price(rest, PERP)
            journal = journal_at(tmp_path)
            async with orders_actor(rest, journal, PERP, "perp") as h, trio.open_nursery() as nursery:
                await nursery.start(forward_private, sim, PERP, h.events)
                flat = await h.wait_reconciled()
                assert flat.position_qty == 0
                assert flat.equity == Decimal(10000)
                await h.commands.send(place(intent(PERP, Decimal("0.01"), price * Decimal("1.02"))))
                notice = await h.fills.receive()
                snap = h.account.get_nowait()[1]
                nursery.cancel_scope.cancel(reason="test finished")
            assert notice.report.filled_qty == Decimal("0.01")
            assert snap.position_qty == Decimal("0.01")
            assert snap.avg_entry > 0
            assert snap.equity is not None
            assert snap.equity < Decimal(10000)  # the taker fee was paid
            journal.close()


async def test_resting_order_of_ours_is_cancelled_by_reconciliation(tmp_path: Path) -> None:
    """An attempt of ours found resting on the book at start is cancelled and settled; foreign orders stay."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            low = quantize_price(await last_price(rest, SPOT) * Decimal("0.9"), Decimal("0.1"), WireSide.BID)
            journal = journal_at(tmp_path)
            ours = apply_event(new_order(intent_id="nanpin:BTC_USDC:s1:78.6", attempt=0, symbol=SPOT, side=Side.BUY,
                                         qty=Decimal("0.01"), limit_price=low, created_ms=wall_ms()),
                               Submitted()).order
            journal.record_attempt(ours)
            for client_id in (ours.client_id, 4242):  # 4242: an order someone else placed on the account
                await rest.signed("POST", "/api/v1/order", {
                    "symbol": SPOT, "side": "Bid", "orderType": "Limit", "timeInForce": "GTC",
                    "quantity": Decimal("0.01"), "price": low, "clientId": client_id})
            async with orders_actor(rest, journal, SPOT, "spot") as h:
                notice = await h.fills.receive()
                snap = await h.wait_reconciled()
                during = await rest.signed("GET", "/api/v1/orders", {"symbol": SPOT})
                assert isinstance(during, tuple)
                assert [o.client_id for o in during if isinstance(o, Order)] == [4242]  # foreign: left alone
            assert (notice.client_id, notice.report.filled_qty, notice.terminal_status) == (
                ours.client_id, Decimal(0), "CANCELLED")
            stored = journal.load_order(ours.client_id)
            assert stored is not None
            assert stored.status is Status.CANCELLED
            assert snap.open_orders == 0
            resting = await rest.signed("GET", "/api/v1/orders", {"symbol": SPOT})
            assert isinstance(resting, tuple)
            # Shutdown cancels every resting order of the symbol (the engine owns the account it trades).
            assert [o for o in resting if isinstance(o, Order)] == []
            journal.close()


async def test_cancel_all_cancels_resting_orders(tmp_path: Path) -> None:
    """CancelAll sends DELETE /api/v1/orders for the symbol: the book holds none of our orders afterwards."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            low = quantize_price(await last_price(rest, SPOT) * Decimal("0.9"), Decimal("0.1"), WireSide.BID)
            journal = journal_at(tmp_path)
            async with orders_actor(rest, journal, SPOT, "spot") as h:
                await h.wait_reconciled()
                await rest.signed("POST", "/api/v1/order", {
                    "symbol": SPOT, "side": "Bid", "orderType": "Limit", "timeInForce": "GTC",
                    "quantity": Decimal("0.01"), "price": low, "clientId": 99})
                await h.commands.send(CancelAll(reason="kill switch"))
                # Commands are taken in order: this IOC's notice proves the CancelAll before it was done.
                await h.commands.send(place(intent(SPOT, Decimal("0.01"), low)))
                await h.fills.receive()
                resting = await rest.signed("GET", "/api/v1/orders", {"symbol": SPOT})
                assert resting == ()
            journal.close()
