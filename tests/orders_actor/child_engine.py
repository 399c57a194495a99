"""A minimal engine process for the kill -9 test: the orders actor against a simulator URL, one journal file.

Run as ``python -m tests.orders_actor.child_engine REST_URL JOURNAL PRICE INTENT...``. It places the intents
one after another (waiting for each notice) and prints ``SENDING <intent>`` / ``NOTICE <intent> <client id>
<qty> <status>`` lines (CLI output for the parent test), then idles until killed.
"""

from __future__ import annotations

import sys
from decimal import Decimal

import httpx
import trio

from actors.brokers import ExchangeBroker
from actors.orders import run_orders
from engine.config import OrdersConfig
from engine.events import AccountEvent, AccountSnapshot, FillNotice, OrderCommand
from engine.rest import RestClient
from engine.runtime import LatestValue
from engine.store.journal import Journal
from tests.orders_actor.conftest import SIGNER, SPOT, intent, place, wall_ms

__all__ = ["main"]


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(rest_url: str, journal_path: str, price: Decimal, names: list[str]) -> None:
    journal = Journal.open(journal_path, now_ms=wall_ms)
    cmd_tx, cmd_rx = trio.open_memory_channel[OrderCommand](4)
    _ev_tx, ev_rx = trio.open_memory_channel[AccountEvent](4)
    fill_tx, fill_rx = trio.open_memory_channel[FillNotice](16)
    account: LatestValue[AccountSnapshot] = LatestValue()
    cfg = OrdersConfig(ack_timeout_s=3.0, lookup_timeout_s=3.0, shutdown_grace_s=1.0)
    async with httpx.AsyncClient(base_url=rest_url, timeout=10.0) as http, trio.open_nursery() as nursery:
        rest = RestClient(http, signer=SIGNER, now_ms=wall_ms, window_ms=2000)
        await nursery.start(lambda task_status: run_orders(
            cfg, commands=cmd_rx, account_events=ev_rx, fills_out=fill_tx, account=account,
            broker=ExchangeBroker(rest), journal=journal, symbol=SPOT, market_type="spot", now_ms=wall_ms,
            task_status=task_status))

        async def report() -> None:
            async for notice in fill_rx:
                say(f"NOTICE {notice.report.intent_id} {notice.client_id} {notice.report.filled_qty} "
                    f"{notice.terminal_status}")

        nursery.start_soon(report)
        for name in names:
            i = intent(SPOT, Decimal("0.01"), price, name=name)
            say(f"SENDING {i.intent_id}")
            await cmd_tx.send(place(i))
        say("ALL QUEUED")
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], Decimal(sys.argv[3]), sys.argv[4:])
