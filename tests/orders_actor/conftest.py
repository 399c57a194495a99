"""Shared helpers: a real simulator on 127.0.0.1, a signed RestClient, a journal per test, the actor's channels,
and a private-stream forwarder (simulator WebSocket -> decoded AccountEvents) standing in for the feed."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
import trio_websocket

from actors.brokers import ExchangeBroker
from actors.orders import OrdersActor, run_orders
from engine.backpack import decode_frame, private_subscribe_frame
from engine.backpack.events import BalanceUpdate, OrderUpdate, PositionUpdate, Ticker
from engine.backpack.signing import Signer
from engine.config import OrdersConfig
from engine.events import AccountEvent, AccountSnapshot, FillNotice, OrderCommand, PlaceOrder
from engine.nanpin.types import OrderIntent, Projection
from engine.rest import RestClient
from engine.runtime import LatestValue
from engine.sim.config import FaultConfig, SimConfig
from engine.sim.server import SimHandle, serve_simulator
from engine.store.journal import Journal

SECRET = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
SIGNER = Signer(SECRET)
SPOT = "BTC_USDC"
PERP = "BTC_USDC_PERP"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def sim_config(**overrides: Any) -> SimConfig:
    """A quiet, real-time simulator on any free port without taker speed bump."""
    values: dict[str, Any] = {"port": 0, "speed": 1.0, "taker_speed_bump_ms": 0, "step_interval_s": 0.05}
    values.update(overrides)
    return SimConfig(faults=FaultConfig(), **values)


@asynccontextmanager
async def running_sim(cfg: SimConfig | None = None) -> AsyncIterator[SimHandle]:
    async with trio.open_nursery() as nursery:
        handle: SimHandle = await nursery.start(serve_simulator, cfg or sim_config())
        try:
            yield handle
        finally:
            nursery.cancel_scope.cancel(reason="test finished")


@asynccontextmanager
async def rest_client(sim: SimHandle, *, window_ms: int = 2000) -> AsyncIterator[RestClient]:
    async with httpx.AsyncClient(base_url=sim.rest_url, timeout=10.0) as http:
        yield RestClient(http, signer=SIGNER, now_ms=wall_ms, window_ms=window_ms)


async def last_price(rest: RestClient, symbol: str) -> Decimal:
    ticker = await rest.public("/api/v1/ticker", {"symbol": symbol})
    price = getattr(ticker, "last_price", None)
    assert isinstance(price, Decimal)
    return price


def intent(symbol: str, qty: Decimal, limit_price: Decimal, *, name: str = "61.8", swing: str = "s1",
           side: str = "BUY") -> OrderIntent:
    return OrderIntent(
        intent_id=f"nanpin:{symbol}:{swing}:{name}", client_id=0, symbol=symbol, side=side, reduce_only=False,
        order_type="limit_ioc", qty=qty, limit_price=limit_price, ref_price=limit_price, notional=qty * limit_price,
        level=name, swing_key=swing, entry_leverage=Decimal(1),
        projected=Projection(position_qty=qty, avg_entry=limit_price, account_leverage=Decimal(1),
                             liq_price=Decimal(0), liq_distance=Decimal(1)),
        reason="test")


def place(i: OrderIntent) -> PlaceOrder:
    return PlaceOrder(intent=i, approved_at_ms=wall_ms())


@attrs.define
class Harness:
    """A running orders actor and the test's ends of its channels."""

    actor: OrdersActor
    commands: trio.MemorySendChannel[OrderCommand]
    events: trio.MemorySendChannel[AccountEvent]
    fills: trio.MemoryReceiveChannel[FillNotice]
    account: LatestValue[AccountSnapshot]
    reconnects: LatestValue[int]

    async def wait_reconciled(self) -> AccountSnapshot:
        seen = 0
        while True:
            seen, snap = await self.account.wait_changed(seen)
            if snap.reconciled:
                return snap


@asynccontextmanager
async def orders_actor(rest: RestClient, journal: Journal, symbol: str, market_type: str,
                       cfg: OrdersConfig | None = None) -> AsyncIterator[Harness]:
    """Run ``run_orders`` with an ExchangeBroker until the block ends."""
    cmd_tx, cmd_rx = trio.open_memory_channel[OrderCommand](8)
    ev_tx, ev_rx = trio.open_memory_channel[AccountEvent](1000)
    fill_tx, fill_rx = trio.open_memory_channel[FillNotice](8)
    account: LatestValue[AccountSnapshot] = LatestValue()
    reconnects: LatestValue[int] = LatestValue()
    async with trio.open_nursery() as nursery:
        actor: OrdersActor = await nursery.start(
            lambda task_status: run_orders(
                cfg or OrdersConfig(ack_timeout_s=3.0, lookup_timeout_s=3.0, shutdown_grace_s=2.0),
                commands=cmd_rx, account_events=ev_rx, fills_out=fill_tx, account=account,
                broker=ExchangeBroker(rest), journal=journal, symbol=symbol, market_type=market_type,
                now_ms=wall_ms, reconnects=reconnects, task_status=task_status))
        try:
            yield Harness(actor=actor, commands=cmd_tx, events=ev_tx, fills=fill_rx, account=account,
                          reconnects=reconnects)
        finally:
            nursery.cancel_scope.cancel(reason="test finished")


async def forward_private(sim: SimHandle, symbol: str, out: trio.MemorySendChannel[AccountEvent], *,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Subscribe to the private streams and forward decoded account events (the feed's job in the engine)."""
    stream = await trio.open_tcp_stream(sim.host, sim.port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(nursery, stream, sim.host, "/")
            try:
                await ws.send_message(private_subscribe_frame(
                    ["account.orderUpdate", "account.balanceUpdate", "account.positionUpdate"], SIGNER,
                    timestamp_ms=wall_ms()))
                # Prove the subscription is live before reporting ready: a public ticker frame follows it.
                await ws.send_message('{"method":"SUBSCRIBE","params":["ticker.' + symbol + '"]}')
                while not isinstance(decode_frame(await ws.get_message()), Ticker):
                    pass
                task_status.started()
                while True:
                    event = decode_frame(await ws.get_message())
                    if isinstance(event, OrderUpdate | BalanceUpdate | PositionUpdate):
                        await out.send(event)
            finally:
                await ws.aclose()
    finally:
        await stream.aclose()


def journal_at(tmp_path: Path) -> Journal:
    return Journal.open(tmp_path / "journal.sqlite", now_ms=wall_ms)
