"""Unknown attempts on virtual time, with a scripted exchange double: lookups only, absence only after the window."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
import trio

from actors.brokers import BrokerAccount
from actors.orders import run_orders
from engine.backpack import Fill, MarketFilters, Order
from engine.backpack.events import OrderEventKind, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from engine.config import OrdersConfig
from engine.errors import ExchangeUnavailable
from engine.events import AccountEvent, AccountSnapshot, CancelAll, FillNotice, OrderCommand
from engine.orders.fsm import OrderRecord, Status
from engine.orders.ids import client_id_for
from engine.runtime import LatestValue
from engine.store.journal import Journal
from tests.orders_actor.conftest import SPOT, intent, place

WINDOW_MS = 5000
BASE_MS = 1_700_000_000_000
FILTERS = MarketFilters(tick_size=Decimal("0.1"), min_price=None, max_price=None, step_size=Decimal("0.00001"),
                        min_quantity=Decimal("0.00001"), max_quantity=None)


def now_ms() -> int:
    return BASE_MS + int(trio.current_time() * 1000)


@attrs.define
class ScriptedExchange:
    """Plays the exchange: each submit follows the next script step ("drop": lost before reaching the book,
    "fill": fills completely); lookups answer from what was executed. Records every call with its time."""

    script: list[str]
    submits: list[tuple[int, int]] = attrs.Factory(list)  # (client id, at ms)
    lookups: list[tuple[int, int]] = attrs.Factory(list)
    executed: dict[int, Order] = attrs.Factory(dict)
    fills: dict[str, tuple[Fill, ...]] = attrs.Factory(dict)
    lookup_failures: int = 0

    @property
    def kind(self) -> str:
        return "scripted"

    def absent_after_ms(self, sent_by_ms: int) -> int:
        return sent_by_ms + WINDOW_MS + 1000

    async def filters(self, symbol: str) -> MarketFilters:
        await trio.lowlevel.checkpoint()
        return FILTERS

    async def submit(self, order: OrderRecord) -> Order:
        await trio.sleep(0.05)
        self.submits.append((order.client_id, now_ms()))
        step = self.script.pop(0)
        if step == "drop":
            raise ExchangeUnavailable("connection reset")
        assert order.limit_price is not None
        oid = f"o{order.client_id}"
        reply = Order(order_id=oid, client_id=order.client_id, symbol=order.symbol, side=Side.BID,
                      order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC, status=OrderStatus.FILLED,
                      quantity=order.qty, quote_quantity=None, price=order.limit_price,
                      executed_quantity=order.qty, executed_quote_quantity=order.qty * order.limit_price,
                      created_at_us=now_ms() * 1000)
        self.executed[order.client_id] = reply
        self.fills[oid] = (Fill(trade_id=len(self.fills) + 1, order_id=oid, client_id=str(order.client_id),
                                symbol=order.symbol, side=Side.BID, price=order.limit_price, quantity=order.qty,
                                fee=Decimal(0), fee_symbol="BTC", is_maker=False, timestamp_us=now_ms() * 1000,
                                system_order_type=None),)
        return reply

    async def find(self, order: OrderRecord) -> Order | None:
        await trio.sleep(0.01)
        self.lookups.append((order.client_id, now_ms()))
        if self.lookup_failures:
            self.lookup_failures -= 1
            raise ExchangeUnavailable("lookup failed")
        return self.executed.get(order.client_id)

    async def fills_of(self, symbol: str, exchange_order_id: str) -> tuple[Fill, ...]:
        await trio.lowlevel.checkpoint()
        return self.fills.get(exchange_order_id, ())

    async def recent_fills(self, symbol: str) -> tuple[Fill, ...]:
        await trio.lowlevel.checkpoint()
        return tuple(f for fs in self.fills.values() for f in fs)

    async def open_orders(self, symbol: str) -> tuple[Order, ...]:
        await trio.lowlevel.checkpoint()
        return ()

    async def cancel(self, symbol: str, exchange_order_id: str) -> None:
        await trio.lowlevel.checkpoint()

    async def cancel_all(self, symbol: str) -> tuple[Order, ...]:
        await trio.lowlevel.checkpoint()
        return ()

    async def account(self, symbol: str, market_type: str) -> BrokerAccount:
        await trio.lowlevel.checkpoint()
        return BrokerAccount(quote_available=Decimal(10000), quote_locked=Decimal(0), base_total=None,
                             position=None, collateral=None)


@attrs.frozen
class Running:
    commands: trio.MemorySendChannel[OrderCommand]
    fills: trio.MemoryReceiveChannel[FillNotice]
    account: LatestValue[AccountSnapshot]
    events: trio.MemorySendChannel[AccountEvent]


@asynccontextmanager
async def actor(exchange: ScriptedExchange, journal: Journal, cfg: OrdersConfig,
                on_change: Callable[[OrderRecord], None] | None = None) -> AsyncIterator[Running]:
    cmd_tx, cmd_rx = trio.open_memory_channel[OrderCommand](4)
    ev_tx, ev_rx = trio.open_memory_channel[AccountEvent](16)
    fill_tx, fill_rx = trio.open_memory_channel[FillNotice](4)
    account: LatestValue[AccountSnapshot] = LatestValue()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_orders(
            cfg, commands=cmd_rx, account_events=ev_rx, fills_out=fill_tx, account=account, broker=exchange,
            journal=journal, symbol=SPOT, market_type="spot", now_ms=now_ms, notices=on_change,
            task_status=task_status))
        yield Running(commands=cmd_tx, fills=fill_rx, account=account, events=ev_tx)
        nursery.cancel_scope.cancel(reason="test finished")


CFG = OrdersConfig(ack_timeout_s=2.0, lookup_timeout_s=2.0, max_attempts=3, shutdown_grace_s=1.0)


async def test_unknown_attempt_is_declared_absent_only_after_its_window(tmp_path: Path,
                                                                        autojump_clock: object) -> None:
    """A lost submit is looked up, never resent, until timestamp + window passed; then attempt 1 is sent."""
    exchange = ScriptedExchange(script=["drop", "fill"])
    journal = Journal.open(tmp_path / "j.sqlite", now_ms=now_ms)
    statuses: list[tuple[int, Status]] = []
    i = intent(SPOT, Decimal("0.01"), Decimal("50000"))
    with trio.fail_after(60):
        async with actor(exchange, journal, CFG, lambda o: statuses.append((o.client_id, o.status))) as run:
            await run.commands.send(place(i))
            notice = await run.fills.receive()
    first, second = client_id_for(i.intent_id, 0), client_id_for(i.intent_id, 1)
    assert [cid for cid, _t in exchange.submits] == [first, second]
    (_, failed_at), (_, resent_at) = exchange.submits
    assert resent_at >= failed_at + WINDOW_MS + 1000
    # Every lookup of attempt 0 was by its own client id; the last one came after the window.
    assert {cid for cid, _t in exchange.lookups} == {first}
    assert exchange.lookups[-1][1] >= failed_at + WINDOW_MS + 1000
    assert (first, Status.UNKNOWN) in statuses
    assert statuses.index((first, Status.UNKNOWN)) < statuses.index((first, Status.REJECTED))
    assert (notice.client_id, notice.report.filled_qty, notice.terminal_status) == (second, Decimal("0.01"),
                                                                                   "FILLED")
    journal.close()


async def test_cancel_all_while_unknown_stops_the_retry(tmp_path: Path, autojump_clock: object) -> None:
    """A CancelAll that arrives while an attempt is unknown withdraws the intent: no new attempt is sent."""
    exchange = ScriptedExchange(script=["drop", "fill"])
    journal = Journal.open(tmp_path / "j.sqlite", now_ms=now_ms)
    i = intent(SPOT, Decimal("0.01"), Decimal("50000"))
    with trio.fail_after(60):
        async with actor(exchange, journal, CFG) as run:
            await run.commands.send(place(i))
            await trio.sleep(1.0)  # the submit has failed; the actor is waiting out the window
            await run.commands.send(CancelAll(reason="operator halt"))
            notice = await run.fills.receive()
    assert len(exchange.submits) == 1
    assert (notice.report.filled_qty, notice.terminal_status) == (Decimal(0), "CANCELLED")
    assert [o.status for o in journal.load_orders_by_intent(i.intent_id)] == [Status.REJECTED]
    journal.close()


async def test_lost_response_of_an_executed_order_is_found_by_lookup(tmp_path: Path,
                                                                      autojump_clock: object) -> None:
    """When the exchange has the order, the first lookup finds it: one submit, trades from history, one notice."""

    @attrs.define
    class ExecutesThenDrops(ScriptedExchange):
        async def submit(self, order: OrderRecord) -> Order:
            await super().submit(order)
            raise ExchangeUnavailable("response lost")

    exchange = ExecutesThenDrops(script=["fill"])
    journal = Journal.open(tmp_path / "j.sqlite", now_ms=now_ms)
    with trio.fail_after(60):
        async with actor(exchange, journal, CFG) as run:
            await run.commands.send(place(intent(SPOT, Decimal("0.01"), Decimal("50000"))))
            notice = await run.fills.receive()
    assert len(exchange.submits) == 1
    assert len(exchange.lookups) == 1
    assert (notice.report.filled_qty, notice.terminal_status) == (Decimal("0.01"), "FILLED")
    assert notice.report.avg_price == Decimal(50000)
    journal.close()


async def test_lookups_that_keep_failing_raise_a_transient_error(tmp_path: Path, autojump_clock: object) -> None:
    """An attempt that stays unknown after max_attempts failed lookups stops the actor with ExchangeUnavailable."""
    exchange = ScriptedExchange(script=["drop"], lookup_failures=10)
    journal = Journal.open(tmp_path / "j.sqlite", now_ms=now_ms)
    with trio.fail_after(60), pytest.RaisesGroup(ExchangeUnavailable, flatten_subgroups=True):
        async with actor(exchange, journal, CFG) as run:
            await run.commands.send(place(intent(SPOT, Decimal("0.01"), Decimal("50000"))))
            await trio.sleep_forever()
    assert len(exchange.submits) == 1
    assert len(exchange.lookups) == CFG.max_attempts
    [order] = journal.load_open_orders()
    assert order.status is Status.UNKNOWN  # left for the next run's reconciliation
    journal.close()


def update(order: OrderRecord, kind: OrderEventKind, status: OrderStatus, executed: Decimal,
           **fill: object) -> OrderUpdate:
    assert order.limit_price is not None
    return OrderUpdate(
        stream="account.orderUpdate", symbol=order.symbol, kind=kind, event_time_us=now_ms() * 1000,
        engine_time_us=now_ms() * 1000, order_id=f"o{order.client_id}", client_id=order.client_id, side=Side.BID,
        order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC, status=status, quantity=order.qty,
        quote_quantity=None, price=order.limit_price, executed_quantity=executed,
        executed_quote_quantity=executed * order.limit_price, **fill)  # type: ignore[arg-type]


async def test_ws_events_before_the_rest_reply_count_once(tmp_path: Path, autojump_clock: object) -> None:
    """Accepted, a partial fill and the expiry arrive on the stream before the REST reply: one trade, one notice."""
    holder: list[Running] = []

    @attrs.define
    class StreamsFirst(ScriptedExchange):
        async def submit(self, order: OrderRecord) -> Order:
            events = holder[0].events
            half = order.qty / 2
            await events.send(update(order, OrderEventKind.ACCEPTED, OrderStatus.NEW, Decimal(0)))
            await events.send(update(order, OrderEventKind.FILL, OrderStatus.PARTIALLY_FILLED, half, trade_id=77,
                                     fill_quantity=half, fill_price=order.limit_price, is_maker=False,
                                     fee=Decimal("0.000005"), fee_symbol="BTC"))
            await events.send(update(order, OrderEventKind.EXPIRED, OrderStatus.EXPIRED, half,
                                     expiry_reason="ImmediateOrCancel"))
            await trio.sleep(0.5)  # the reply comes well after the stream
            self.submits.append((order.client_id, now_ms()))
            assert order.limit_price is not None
            reply = Order(order_id=f"o{order.client_id}", client_id=order.client_id, symbol=order.symbol,
                          side=Side.BID, order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC,
                          status=OrderStatus.EXPIRED, quantity=order.qty, quote_quantity=None,
                          price=order.limit_price, executed_quantity=half,
                          executed_quote_quantity=half * order.limit_price, created_at_us=now_ms() * 1000,
                          expiry_reason="ImmediateOrCancel")
            # Fills history has the same trade the stream reported.
            self.fills[reply.order_id] = (Fill(
                trade_id=77, order_id=reply.order_id, client_id=str(order.client_id), symbol=order.symbol,
                side=Side.BID, price=order.limit_price, quantity=half, fee=Decimal("0.000005"), fee_symbol="BTC",
                is_maker=False, timestamp_us=now_ms() * 1000, system_order_type=None),)
            return reply

    exchange = StreamsFirst(script=[])
    journal = Journal.open(tmp_path / "j.sqlite", now_ms=now_ms)
    with trio.fail_after(60):
        async with actor(exchange, journal, CFG) as run:
            holder.append(run)
            await run.commands.send(place(intent(SPOT, Decimal("0.01"), Decimal("50000"))))
            notice = await run.fills.receive()
            with trio.move_on_after(5):
                extra = await run.fills.receive()
                raise AssertionError(f"a second notice: {extra}")
    assert (notice.report.filled_qty, notice.terminal_status) == (Decimal("0.005"), "EXPIRED")
    [stored] = journal.fills_since(0, symbol=SPOT)
    assert stored.fill.trade_id == "77"
    kinds = [e.kind for e in journal.order_events(notice.client_id)]
    assert kinds[:4] == ["Submitted", "Accepted", "FillEvent", "Expired"]
    assert kinds.count("FillEvent") == 1
    journal.close()
