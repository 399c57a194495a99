"""Child process for the kill -9 test: journals attempts and fills in a loop until it is killed.

Usage: ``python -m tests.store.crash_writer <journal path> <round> <announce file>``. It prints ``ready`` on
stdout once its first new attempt is committed; after every logical write returns it appends ``C <client_id> <status>``
to the announce file (so the parent knows that write is committed). Announcements go to a file, not the
pipe, so that the parent is not woken after every write: a kill timed by the parent's own timer then lands at
any instant, not just after an announcement. On start it first finishes the
attempts a previous, killed round left open, replaying their ledger fills to prove inserts are idempotent.
A checkpoint thread runs alongside, as the journal actor's would, so kills also land mid-checkpoint.
Any anomaly is printed as ``X <reason>`` and exits with status 3.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from decimal import Decimal

from engine.orders.fsm import FillEvent, OrderEvent, OrderTracker, Side, Status, Submitted, new_order
from engine.store.journal import Journal

__all__ = ["main"]

QTY = Decimal("0.002")
HALF = Decimal("0.001")


def _fill(client_id: int, n: int) -> FillEvent:
    return FillEvent(trade_id=f"{client_id}-{n}", qty=HALF, price=Decimal("65000.5"), fee=Decimal("0.0000005"),
                     fee_asset="BTC", is_maker=n == 2, ts_ms=1_700_000_000_000 + n, exchange_order_id=None)


def _next_event(status: Status, client_id: int) -> OrderEvent | None:
    match status:
        case Status.NEW:
            return Submitted()
        case Status.SENT:
            return _fill(client_id, 1)
        case Status.PARTIALLY_FILLED:
            return _fill(client_id, 2)
        case _:
            return None


class Announcer:
    """Appends one line per committed write with a single write(2), so a line is either whole or absent."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def say(self, line: str) -> None:
        os.write(self._fd, f"{line}\n".encode())


def _fail(announce: Announcer, reason: str) -> None:
    announce.say(f"X {reason}")
    sys.exit(3)


def _advance(journal: Journal, tracker: OrderTracker, client_id: int, announce: Announcer) -> None:
    """Drive one attempt to FILLED, journaling and announcing each step."""
    while True:
        current = tracker.get(client_id)
        assert current is not None
        event = _next_event(current.status, client_id)
        if event is None:
            return
        outcome = tracker.apply(client_id, event)
        journal.record_event(outcome.order, event)
        if isinstance(event, FillEvent) and journal.record_fill(current.symbol, current.side, event,
                                                                client_id=client_id):
            _fail(announce, f"trade {event.trade_id} was stored twice")
        announce.say(f"C {client_id} {outcome.order.status.value}")


def _checkpoints(journal: Journal) -> None:
    while True:
        journal.checkpoint()
        time.sleep(0.002)


def main() -> None:
    path, round_, announce = sys.argv[1], int(sys.argv[2]), Announcer(sys.argv[3])
    journal = Journal.open(path)
    tracker = OrderTracker(journal.load_open_orders())
    threading.Thread(target=_checkpoints, args=(journal,), daemon=True).start()
    for order in tracker.open_orders():
        if order.fills and journal.record_fill(order.symbol, order.side, order.fills[0],
                                               client_id=order.client_id):
            _fail(announce, f"restored trade {order.fills[0].trade_id} was missing from the ledger")
        _advance(journal, tracker, order.client_id, announce)
    n = 0
    while True:
        order = new_order(intent_id=f"crash:{round_}:{n}", attempt=0, symbol="BTC_USDC", side=Side.BUY,
                          qty=QTY, limit_price=Decimal("65001"), created_ms=n)
        journal.record_intent(order.intent_id, order.symbol, {"round": round_, "n": n})
        tracker.add(order)
        journal.record_attempt(order)
        announce.say(f"C {order.client_id} NEW")
        if n == 0:
            # Ready once this round has committed something, so every round has a write to check.
            sys.stdout.write("ready\n")
            sys.stdout.flush()
        _advance(journal, tracker, order.client_id, announce)
        tracker.forget(order.client_id)
        n += 1


if __name__ == "__main__":
    main()
