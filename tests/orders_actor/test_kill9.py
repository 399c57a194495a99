"""A real ``kill -9`` of an engine process during order flow, then a restart on the same journal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import trio

from engine.backpack import Fill, Order
from engine.backpack.events import Side as WireSide
from engine.backpack.filters import quantize_price
from engine.orders.ids import client_id_for
from engine.store.journal import Journal
from tests.orders_actor.conftest import SPOT, last_price, rest_client, running_sim, wall_ms

REPO = Path(__file__).resolve().parents[2]
NAMES = ["k0", "k1", "k2"]


class Child:
    """One engine process with its stdout read line by line."""

    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self._buffer = b""
        self.lines: list[str] = []

    async def wait_line(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        while True:
            for line in self.lines:
                if line.startswith(prefix):
                    self.lines.remove(line)
                    return line
            chunk = await self.proc.stdout.receive_some(4096)
            if not chunk:
                raise AssertionError(f"child exited before printing {prefix!r}")
            self._buffer += chunk
            *complete, self._buffer = self._buffer.split(b"\n")
            self.lines.extend(c.decode() for c in complete)


async def start_child(rest_url: str, journal: Path, price: Decimal) -> Child:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.orders_actor.child_engine", rest_url, str(journal), str(price), *NAMES],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return Child(proc)


def intent_id(name: str) -> str:
    return f"nanpin:{SPOT}:s1:{name}"


async def test_kill_9_mid_order_then_restart_no_duplicate_no_lost_fill(tmp_path: Path) -> None:
    """Killed with SIGKILL while an order is in flight and restarted: every intent executes exactly once on the
    simulator and every simulator trade of ours is in the journal exactly once."""
    journal_path = tmp_path / "journal.sqlite"
    with trio.fail_after(120):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = quantize_price(await last_price(rest, SPOT) * Decimal("1.02"), Decimal("0.1"), WireSide.BID)
            sim.faults.latency_ms = 400  # keeps each POST in flight long enough to kill the process under it
            first = await start_child(sim.rest_url, journal_path, price)
            try:
                await first.wait_line(f"NOTICE {intent_id('k0')}")
                await first.wait_line(f"SENDING {intent_id('k1')}")
                await trio.sleep(0.2)
            finally:
                first.proc.send_signal(signal.SIGKILL)
                assert await first.proc.wait() == -signal.SIGKILL
            killed_at = wall_ms()
            with Journal.open(journal_path, now_ms=wall_ms) as at_kill:
                # The kill landed mid-flight: k1's attempt is durable as SENT, its outcome unknown to the journal.
                assert [o.status.value for o in at_kill.load_orders_by_intent(intent_id("k1"))] == ["SENT"]
            second = await start_child(sim.rest_url, journal_path, price)
            try:
                for name in NAMES:
                    while True:
                        line = await second.wait_line(f"NOTICE {intent_id(name)}")
                        if Decimal(line.split()[3]) > 0:
                            break
            finally:
                second.proc.send_signal(signal.SIGKILL)
                await second.proc.wait()
            assert wall_ms() > killed_at
            history = await rest.signed("GET", "/wapi/v1/history/orders", {"symbol": SPOT, "limit": 1000})
            fills = await rest.signed("GET", "/wapi/v1/history/fills", {"symbol": SPOT, "limit": 1000})
    assert isinstance(history, tuple)
    assert isinstance(fills, tuple)
    journal = Journal.open(journal_path, now_ms=wall_ms)
    try:
        for name in NAMES:
            ids = {client_id_for(intent_id(name), n) for n in range(5)}
            executed = [o for o in history if isinstance(o, Order) and o.client_id in ids]
            assert len(executed) == 1, f"{name}: {len(executed)} orders on the simulator"
            assert executed[0].executed_quantity == Decimal("0.01")
        ours = {str(f.trade_id) for f in fills if isinstance(f, Fill)}
        journaled = [s.fill.trade_id for s in journal.fills_since(0, symbol=SPOT)]
        assert sorted(journaled) == sorted(ours)  # none lost, none twice
        assert journal.load_open_orders() == []
    finally:
        journal.close()
