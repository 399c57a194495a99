"""The orders actor against the real simulator on 127.0.0.1: fills, expiry, rejection, lost responses, restarts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import trio

from engine.backpack import DepthSnapshot, Order
from engine.orders.fsm import Status
from engine.orders.ids import client_id_for
from engine.rest import RestClient
from tests.orders_actor.conftest import (
    SPOT,
    forward_private,
    intent,
    journal_at,
    last_price,
    orders_actor,
    place,
    rest_client,
    running_sim,
    sim_config,
)


async def _sim_orders_with_client_id(rest: RestClient, symbol: str, client_id: int) -> list[Order]:
    rows = await rest.signed("GET", "/wapi/v1/history/orders", {"symbol": symbol, "limit": 1000})
    assert isinstance(rows, tuple)
    return [r for r in rows if isinstance(r, Order) and r.client_id == client_id]


async def test_marketable_ioc_fills_once_with_one_notice(tmp_path: Path) -> None:
    """A marketable IOC buy fills, yields exactly one FillNotice and journals the attempt and its trades."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = await last_price(rest, SPOT)
            journal = journal_at(tmp_path)
            async with orders_actor(rest, journal, SPOT, "spot") as h:
                await h.wait_reconciled()
                i = intent(SPOT, Decimal("0.01"), price * Decimal("1.02"))
                await h.commands.send(place(i))
                notice = await h.fills.receive()
                assert notice.report.filled_qty == Decimal("0.01")
                assert notice.terminal_status == "FILLED"
                assert notice.client_id == client_id_for(i.intent_id, 0)
                assert notice.report.avg_price <= i.limit_price
                with trio.move_on_after(1.0):
                    extra = await h.fills.receive()
                    raise AssertionError(f"a second notice: {extra}")
                snap = h.account.get_nowait()[1]
                assert snap.position_qty > 0
            order = journal.load_order(notice.client_id)
            assert order is not None
            assert order.status is Status.FILLED
            assert sum(f.fill.qty for f in journal.fills_since(0, symbol=SPOT)) == Decimal("0.01")
            assert len(await _sim_orders_with_client_id(rest, SPOT, notice.client_id)) == 1
            journal.close()


async def _ask_band(rest: RestClient, symbol: str) -> tuple[Decimal, Decimal]:
    """The price of the 5th ask level and the total size of the first five."""
    depth = await rest.public("/api/v1/depth", {"symbol": symbol, "limit": "5"})
    assert isinstance(depth, DepthSnapshot)
    return depth.asks[-1][0], sum((size for _p, size in depth.asks), Decimal(0))


async def test_ioc_below_the_book_expires_with_a_zero_notice(tmp_path: Path) -> None:
    """An IOC priced below the best ask expires unfilled: one FillNotice with zero quantity, EXPIRED journaled."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = await last_price(rest, SPOT)
            journal = journal_at(tmp_path)
            async with orders_actor(rest, journal, SPOT, "spot") as h:
                await h.wait_reconciled()
                await h.commands.send(place(intent(SPOT, Decimal("0.01"), price * Decimal("0.8"))))
                notice = await h.fills.receive()
            assert (notice.report.filled_qty, notice.terminal_status) == (Decimal(0), "EXPIRED")
            order = journal.load_order(notice.client_id)
            assert order is not None
            assert order.status is Status.EXPIRED
            assert journal.fills_since(0, symbol=SPOT) == []
            journal.close()


async def test_partial_ioc_reports_the_partial_quantity(tmp_path: Path) -> None:
    """An IOC far larger than the book within 0.5 % of the price fills part, expires the rest, reports the part."""
    with trio.fail_after(60):
        async with running_sim(sim_config(initial_usdc=Decimal("100000000"))) as sim, rest_client(sim) as rest:
            journal = journal_at(tmp_path)
            async with orders_actor(rest, journal, SPOT, "spot") as h:
                await h.wait_reconciled()
                ask, size = await _ask_band(rest, SPOT)
                qty = Decimal(500)  # 500 BTC: far more than the synthetic book holds near the price
                assert size < qty
                await h.commands.send(place(intent(SPOT, qty, ask * Decimal("1.005"))))
                notice = await h.fills.receive()
            order = journal.load_order(notice.client_id)
            assert order is not None
            assert notice.terminal_status == "EXPIRED"
            assert Decimal(0) < notice.report.filled_qty < qty
            assert notice.report.filled_qty == order.filled_qty == order.reported_filled_qty
            assert sum(f.fill.qty for f in journal.fills_since(0, symbol=SPOT)) == notice.report.filled_qty
            assert notice.report.avg_price <= ask * Decimal("1.005")
            journal.close()


async def test_insufficient_funds_is_rejected_without_retry(tmp_path: Path) -> None:
    """A buy the account cannot pay is REJECTED once: one attempt, a zero notice, nothing on the simulator."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = await last_price(rest, SPOT)
            journal = journal_at(tmp_path)
            i = intent(SPOT, Decimal("10"), price * Decimal("1.02"))
            async with orders_actor(rest, journal, SPOT, "spot") as h:
                await h.wait_reconciled()
                await h.commands.send(place(i))
                notice = await h.fills.receive()
                with trio.move_on_after(1.0):
                    extra = await h.fills.receive()
                    raise AssertionError(f"a second notice: {extra}")
            assert (notice.report.filled_qty, notice.terminal_status) == (Decimal(0), "REJECTED")
            attempts = journal.load_orders_by_intent(i.intent_id)
            assert [(o.attempt, o.status) for o in attempts] == [(0, Status.REJECTED)]
            assert attempts[0].reason is not None
            assert "INSUFFICIENT_FUNDS" in attempts[0].reason
            assert await _sim_orders_with_client_id(rest, SPOT, notice.client_id) == []
            journal.close()


async def test_lost_order_response_is_resolved_by_lookup_not_resent(tmp_path: Path) -> None:
    """The simulator executes the order but loses the reply: the actor looks it up, never sends a second one."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = await last_price(rest, SPOT)
            journal = journal_at(tmp_path)
            i = intent(SPOT, Decimal("0.01"), price * Decimal("1.02"))
            async with orders_actor(rest, journal, SPOT, "spot") as h:
                await h.wait_reconciled()
                sim.faults.lose_next_order_responses(1)
                await h.commands.send(place(i))
                notice = await h.fills.receive()
            assert sim.faults.statistics().order_responses_lost == 1
            assert (notice.report.filled_qty, notice.terminal_status) == (Decimal("0.01"), "FILLED")
            assert [o.attempt for o in journal.load_orders_by_intent(i.intent_id)] == [0]
            assert len(await _sim_orders_with_client_id(rest, SPOT, client_id_for(i.intent_id, 0))) == 1
            assert await _sim_orders_with_client_id(rest, SPOT, client_id_for(i.intent_id, 1)) == []
            events = [e.kind for e in journal.order_events(notice.client_id)]
            assert events[:2] == ["Submitted", "TimedOut"]
            journal.close()


async def test_lost_response_with_the_private_stream_resolves_from_ws(tmp_path: Path) -> None:
    """With the private stream forwarded, WS events settle a lost-response order; still one order, one notice."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = await last_price(rest, SPOT)
            journal = journal_at(tmp_path)
            i = intent(SPOT, Decimal("0.01"), price * Decimal("1.02"))
            async with orders_actor(rest, journal, SPOT, "spot") as h, trio.open_nursery() as nursery:
                await nursery.start(forward_private, sim, SPOT, h.events)
                await h.wait_reconciled()
                sim.faults.lose_next_order_responses(1)
                await h.commands.send(place(i))
                notice = await h.fills.receive()
                with trio.move_on_after(1.0):
                    extra = await h.fills.receive()
                    raise AssertionError(f"a second notice: {extra}")
                nursery.cancel_scope.cancel(reason="test finished")
            assert (notice.report.filled_qty, notice.terminal_status) == (Decimal("0.01"), "FILLED")
            assert len(await _sim_orders_with_client_id(rest, SPOT, notice.client_id)) == 1
            order = journal.load_order(notice.client_id)
            assert order is not None
            assert len(journal.fills_since(0, symbol=SPOT)) == len(order.fills)
            journal.close()


async def test_ws_events_before_the_rest_response(tmp_path: Path) -> None:
    """Fills streamed over WS (usually before the REST reply) and the reply agree: one notice, no double count."""
    with trio.fail_after(60):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = await last_price(rest, SPOT)
            journal = journal_at(tmp_path)
            async with orders_actor(rest, journal, SPOT, "spot") as h, trio.open_nursery() as nursery:
                await nursery.start(forward_private, sim, SPOT, h.events)
                await h.wait_reconciled()
                for n in range(3):
                    await h.commands.send(place(intent(SPOT, Decimal("0.01"), price * Decimal("1.02"),
                                                       name=f"L{n}")))
                    notice = await h.fills.receive()
                    assert notice.report.filled_qty == Decimal("0.01")
                nursery.cancel_scope.cancel(reason="test finished")
            assert sum(f.fill.qty for f in journal.fills_since(0, symbol=SPOT)) == Decimal("0.03")
            journal.close()
