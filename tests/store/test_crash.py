"""A real kill -9: a writer process is SIGKILLed at random moments and the journal must reopen consistent."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import trio

from engine.orders.fsm import Status
from engine.store.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 4
# How far each announced status is along the writer's path NEW -> SENT -> PARTIALLY_FILLED -> FILLED.
PROGRESS = {Status.NEW: 0, Status.SENT: 1, Status.PARTIALLY_FILLED: 2, Status.FILLED: 3}


async def run_and_kill(db: Path, round_: int, kill_after_s: float, work: Path) -> dict[int, Status]:
    """Start the writer, SIGKILL it ``kill_after_s`` after it is ready, and return the last status it
    announced for each client id (each announcement follows a committed write)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    announce = work / f"announce{round_}.txt"
    stderr_path = work / f"stderr{round_}.txt"
    with stderr_path.open("wb") as err:
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tests.store.crash_writer", str(db), str(round_), str(announce)],
            stdout=subprocess.PIPE, stderr=err, cwd=ROOT, env=env,
        )
        assert proc.stdout is not None
        try:
            with trio.fail_after(30):  # interpreter start-up on a busy machine
                ready = await proc.stdout.receive_some(64)
            assert ready == b"ready\n", f"writer failed to start: {ready!r} {stderr_path.read_text()}"
            # The kill instant itself: our own timer, independent of what the writer is doing.
            await trio.sleep(kill_after_s)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"writer ended by itself: {stderr_path.read_text()}"
    announced: dict[int, Status] = {}
    *complete, _partial = announce.read_text().split("\n")  # a newline-terminated line was fully written
    for line in complete:
        assert line.startswith("C "), f"writer reported: {line}"
        _, cid, status = line.split()
        announced[int(cid)] = Status(status)
    return announced


def check_consistent(db: Path, announced: dict[int, Status]) -> int:
    """integrity_check ok; every announced write is present; fills are unique and agree with the orders."""
    with Journal.open(db) as journal:
        assert journal.integrity_check() == "ok"
        for cid, status in announced.items():
            order = journal.load_order(cid)
            assert order is not None, f"committed attempt {cid} lost"
            assert PROGRESS[order.status] >= PROGRESS[status], (cid, order.status, status)
            assert order.filled_qty == Decimal("0.001") * len(order.fills)
        journal.load_open_orders()  # every open attempt restores through the state machine's invariants
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM fills GROUP BY symbol, trade_id "
                            "HAVING COUNT(*) > 1)").fetchone()[0] == 0
        # The order row, its FillEvent history and the ledger were written in one transaction each time.
        mismatches = conn.execute(
            """SELECT o.client_id FROM orders o
               WHERE CAST(o.filled_qty AS REAL) * 1000 !=
                     (SELECT COUNT(*) FROM fills f WHERE f.client_id = o.client_id)
                  OR (SELECT COUNT(*) FROM fills f WHERE f.client_id = o.client_id) !=
                     (SELECT COUNT(*) FROM order_events e WHERE e.client_id = o.client_id
                      AND e.kind = 'FillEvent')"""
        ).fetchall()
        assert mismatches == []
        # Each row's status is the status after its last journaled event (NEW: no event yet), and the
        # writer's path (Submitted, fill, fill) has exactly one event per step.
        histories = conn.execute(
            """SELECT o.client_id, o.status,
                      (SELECT status_after FROM order_events e WHERE e.client_id = o.client_id
                       ORDER BY seq DESC LIMIT 1),
                      (SELECT COUNT(*) FROM order_events c WHERE c.client_id = o.client_id)
               FROM orders o"""
        ).fetchall()
        for cid, status, last, count in histories:
            assert count == PROGRESS[Status(status)], (cid, status, count)
            assert last == (None if status == "NEW" else status), (cid, status, last)
        return int(conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0])
    finally:
        conn.close()


async def test_kill_9_at_random_moments(tmp_path: Path) -> None:
    """After SIGKILL at random instants (four rounds on one file, each < 0.5 s) the journal passes integrity_check, holds
    every attempt the writer saw committed, and has no duplicated fill."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    db = tmp_path / "crash.sqlite"
    total_announced: set[int] = set()
    with trio.fail_after(120):
        for round_ in range(ROUNDS):
            delay = rng.uniform(0.02, 0.4)
            announced = await run_and_kill(db, round_, delay, tmp_path)
            assert announced, f"seed {seed}: round {round_} committed nothing"
            total_announced |= announced.keys()
            rows = check_consistent(db, announced)
            assert rows >= len(total_announced), f"seed {seed}"
