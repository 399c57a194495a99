"""Journal round trips, idempotent writes, atomicity of each logical write, WAL checkpointing, config."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
import trio

from engine.errors import ConfigError, InvariantViolation
from engine.orders.fsm import (
    Accepted,
    Cancelled,
    Expired,
    FillEvent,
    LookupFound,
    LookupNotFound,
    OrderEvent,
    OrderRecord,
    OrderTracker,
    Rejected,
    Side,
    Status,
    Submitted,
    TimedOut,
    new_order,
)
from engine.orders.ids import client_id_for
from engine.store.config import JournalConfig
from engine.store.journal import SCHEMA_VERSION, Journal, decode_event, encode_event

# Two intent ids whose attempt-0 client ids collide (found by search; asserted below).
COLLIDING = ("collide:29685295", "collide:32060020")


class Clock:
    """A settable millisecond clock for journal timestamps."""

    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        self.ms += 1
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal(tmp_path: Path, clock: Clock) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "var" / "journal.sqlite", now_ms=clock)
    yield j
    j.close()


def order(intent: str = "nanpin:BTC_USDC:k:61.8", attempt: int = 0, qty: str = "1") -> OrderRecord:
    return new_order(intent_id=intent, attempt=attempt, symbol="BTC_USDC", side=Side.BUY, qty=Decimal(qty),
                     limit_price=Decimal("98691.5"), created_ms=attempt)


def fill(trade_id: str, qty: str, *, ts_ms: int = 1000, price: str = "98000") -> FillEvent:
    return FillEvent(trade_id=trade_id, qty=Decimal(qty), price=Decimal(price), fee=Decimal("0.00001"),
                     fee_asset="BTC", is_maker=False, ts_ms=ts_ms, exchange_order_id="E1")


def drive(journal: Journal, tracker: OrderTracker, client_id: int, *events: OrderEvent) -> OrderRecord:
    """Apply events through the tracker and journal each changed outcome, as the orders actor does."""
    for event in events:
        outcome = tracker.apply(client_id, event)
        if outcome.changed:
            journal.record_event(outcome.order, event)
    result = tracker.get(client_id)
    assert result is not None
    return result


def test_attempt_round_trip_through_reopen(tmp_path: Path, clock: Clock) -> None:
    """What the tracker holds after a sequence of events is exactly what a reopened journal restores."""
    path = tmp_path / "j.sqlite"
    with Journal.open(path, now_ms=clock) as journal:
        o = order()
        tracker = OrderTracker([o])
        assert journal.record_attempt(o)
        final = drive(journal, tracker, o.client_id, Submitted(), fill("1", "0.25"), Accepted(exchange_order_id="E1"),
                      fill("1", "0.25"), fill("2", "0.5"))
    with Journal.open(path, now_ms=clock) as reopened:
        assert reopened.load_order(o.client_id) == final
        assert final.status is Status.PARTIALLY_FILLED
        assert reopened.load_open_orders() == [final]
        assert [e.kind for e in reopened.order_events(o.client_id)] == [
            "Submitted", "FillEvent", "Accepted", "FillEvent"
        ]


def test_every_event_kind_round_trips(journal: Journal) -> None:
    """Each event class is stored as JSON and decoded back to an equal event."""
    events: list[OrderEvent] = [
        Submitted(), Accepted(exchange_order_id="9"), fill("7", "0.5"), Cancelled(executed_qty=Decimal("0.5")),
        Cancelled(), Expired(reason="ImmediateOrCancel", executed_qty=None, exchange_order_id="9"),
        Rejected(code="INVALID_ORDER", message="Invalid order"), TimedOut(),
        LookupFound(status=Status.PARTIALLY_FILLED, executed_qty=Decimal("0.1"), exchange_order_id="9",
                    executed_quote_qty=Decimal("9800.5")),
        LookupNotFound(),
    ]
    for event in events:
        assert decode_event(type(event).__name__, encode_event(event)) == event


def test_malformed_payload_is_an_invariant_violation() -> None:
    """A journaled event that cannot be decoded is reported, not guessed at."""
    with pytest.raises(InvariantViolation):
        decode_event("FillEvent", {"trade_id": "1"})
    with pytest.raises(InvariantViolation):
        decode_event("Teleported", {})


def test_record_attempt_is_idempotent(journal: Journal) -> None:
    """Recording the same attempt twice writes one row, in status NEW, with no history yet."""
    o = order()
    assert journal.record_attempt(o) is True
    assert journal.record_attempt(o) is False
    assert journal.load_orders_by_intent(o.intent_id) == [o]
    assert journal.order_events(o.client_id) == []


def test_client_id_collision_is_refused(journal: Journal) -> None:
    """Two different attempts with the same CRC-32 client id cannot both be journaled."""
    first, second = COLLIDING
    assert client_id_for(first, 0) == client_id_for(second, 0)
    journal.record_attempt(order(first))
    with pytest.raises(InvariantViolation, match="already used"):
        journal.record_attempt(order(second))
    assert [o.intent_id for o in journal.load_open_orders()] == [first]


def test_only_unsent_attempts_are_recorded(journal: Journal) -> None:
    """record_attempt refuses an order past SENT: an attempt is journaled before the exchange can know it."""
    acked = attrs.evolve(order(), status=Status.ACKNOWLEDGED, exchange_order_id="E1")
    with pytest.raises(InvariantViolation, match="must be NEW or SENT"):
        journal.record_attempt(acked)


def test_sent_attempt_is_one_commit(journal: Journal) -> None:
    """Recording an attempt already in SENT writes the row and its Submitted event together, in one commit,
    and restores to the same record."""
    o = order()
    tracker = OrderTracker([o])
    sent = tracker.apply(o.client_id, Submitted()).order
    commits = journal.statistics().commits
    assert journal.record_attempt(sent) is True
    assert journal.statistics().commits == commits + 1
    assert journal.load_order(o.client_id) == sent
    assert [(e.kind, e.status_after) for e in journal.order_events(o.client_id)] == [("Submitted", Status.SENT)]
    assert journal.load_open_orders() == [sent]


def test_attempts_by_intent_and_next_attempt(journal: Journal) -> None:
    """Attempts of one intent come back in attempt order, and next_attempt counts past the last one."""
    intent = "nanpin:BTC_USDC:k:50.0"
    assert journal.next_attempt(intent) == 0
    tracker = OrderTracker()
    for attempt in range(3):
        o = order(intent, attempt)
        tracker.add(o)
        journal.record_attempt(o)
        drive(journal, tracker, o.client_id, Submitted(), TimedOut(), LookupNotFound())
    assert journal.next_attempt(intent) == 3
    loaded = journal.load_orders_by_intent(intent)
    assert [o.attempt for o in loaded] == [0, 1, 2]
    assert {o.status for o in loaded} == {Status.REJECTED}
    assert journal.load_open_orders() == []
    assert journal.load_orders_by_intent("other") == []


def test_repeated_fill_event_is_not_journaled_twice(journal: Journal) -> None:
    """Journaling the same fill event for an attempt twice writes it once, so a restore never double counts."""
    o = order()
    tracker = OrderTracker([o])
    journal.record_attempt(o)
    drive(journal, tracker, o.client_id, Submitted())
    f = fill("5", "0.5")
    after = tracker.apply(o.client_id, f).order
    assert journal.record_event(after, f) is True
    assert journal.record_event(after, f) is False
    assert [e.kind for e in journal.order_events(o.client_id)] == ["Submitted", "FillEvent"]
    assert journal.load_order(o.client_id) == after


def test_fill_insert_is_idempotent(journal: Journal) -> None:
    """The same trade recorded twice is stored once; record_fill says whether it was new."""
    f = fill("123", "0.5")
    assert journal.record_fill("BTC_USDC", Side.BUY, f) is True
    assert journal.record_fill("BTC_USDC", Side.BUY, f) is False
    assert journal.record_fill("ETH_USDC", Side.BUY, f) is True  # trade ids are unique per symbol
    assert len(journal.fills_since(0, symbol="BTC_USDC")) == 1
    assert len(journal.fills_since(0)) == 2


def test_fill_with_same_trade_id_but_other_values(journal: Journal) -> None:
    """A known trade id arriving with different values is an invariant violation."""
    journal.record_fill("BTC_USDC", Side.BUY, fill("1", "0.5"))
    with pytest.raises(InvariantViolation, match="different values"):
        journal.record_fill("BTC_USDC", Side.BUY, fill("1", "0.6"))


def test_history_fill_is_attributed_when_the_event_arrives(journal: Journal) -> None:
    """A trade first seen in fills history is linked to its attempt when the order's fill event is journaled,
    without a second ledger row."""
    o = order()
    tracker = OrderTracker([o])
    journal.record_attempt(o)
    f = fill("55", "1")
    assert journal.record_fill("BTC_USDC", Side.BUY, f) is True
    drive(journal, tracker, o.client_id, Submitted(), f)
    (stored,) = journal.fills_since(0)
    assert stored.client_id == o.client_id
    assert stored.fill == f


def test_failed_write_leaves_nothing(journal: Journal) -> None:
    """A logical write that fails after some of its statements ran is rolled back entirely."""
    o = order()
    tracker = OrderTracker([o])
    journal.record_attempt(o)
    drive(journal, tracker, o.client_id, Submitted())
    journal.record_fill("BTC_USDC", Side.BUY, fill("9", "0.4"))  # the ledger already knows trade 9 as 0.4
    outcome = tracker.apply(o.client_id, fill("9", "0.5"))
    with pytest.raises(InvariantViolation, match="different values"):
        journal.record_event(outcome.order, fill("9", "0.5"))
    restored = journal.load_order(o.client_id)
    assert restored is not None
    assert restored.status is Status.SENT
    assert restored.filled_qty == 0
    assert [e.kind for e in journal.order_events(o.client_id)] == ["Submitted"]
    assert [s.fill.qty for s in journal.fills_since(0)] == [Decimal("0.4")]


def test_event_for_unjournaled_attempt(journal: Journal) -> None:
    """Journaling an event for an attempt that was never recorded is refused and writes nothing."""
    o = order()
    tracker = OrderTracker([o])
    tracker.apply(o.client_id, Submitted())
    outcome = tracker.apply(o.client_id, fill("9", "0.5"))
    with pytest.raises(InvariantViolation, match="never journaled"):
        journal.record_event(outcome.order, fill("9", "0.5"))
    assert journal.fills_since(0) == []
    assert journal.order_events(o.client_id) == []


def test_fills_since_filters_by_time(journal: Journal) -> None:
    """fills_since returns the fills at or after a trade time, in trade-time order."""
    for trade, ts in (("a", 300), ("b", 100), ("c", 200)):
        journal.record_fill("BTC_USDC", Side.SELL, fill(trade, "0.1", ts_ms=ts))
    assert [s.fill.trade_id for s in journal.fills_since(150)] == ["c", "a"]
    assert all(s.side is Side.SELL and s.client_id is None for s in journal.fills_since(0))


def test_strategy_state_is_versioned(journal: Journal, clock: Clock) -> None:
    """Each save replaces the blob and bumps the version; loading returns the latest."""
    assert journal.load_strategy_state("nanpin:BTC_USDC") is None
    assert journal.save_strategy_state("nanpin:BTC_USDC", {"filled_levels": ["61.8"], "halted": False}) == 1
    assert journal.save_strategy_state("nanpin:BTC_USDC", {"filled_levels": ["61.8", "78.6"]}) == 2
    state = journal.load_strategy_state("nanpin:BTC_USDC")
    assert state is not None
    assert state.version == 2
    assert state.blob == {"filled_levels": ["61.8", "78.6"]}
    assert state.updated_ms <= clock.ms


def test_payloads_must_be_json(journal: Journal) -> None:
    """A blob that is not JSON (after Decimal and enum conversion) is refused as a caller bug."""
    with pytest.raises(InvariantViolation, match="JSON"):
        journal.save_strategy_state("k", {"when": object()})
    with pytest.raises(InvariantViolation, match="JSON"):
        journal.save_strategy_state("k", {"x": float("nan")})
    assert journal.load_strategy_state("k") is None


def test_intents_risk_events_and_meta(journal: Journal) -> None:
    """Intents are stored once, risk events append in order, meta is a key/value store."""
    payload = {"qty": Decimal("0.10183"), "side": Side.BUY, "level": "61.8"}
    assert journal.record_intent("i1", "BTC_USDC", payload) is True
    assert journal.record_intent("i1", "BTC_USDC", {"other": 1}) is False
    assert journal.load_intent("i1") == {"qty": "0.10183", "side": "Bid", "level": "61.8"}
    assert journal.load_intent("nope") is None
    first = journal.record_risk_event(kind="BLOCK", code="PRICE_STALE", detail="age 12 s")
    second = journal.record_risk_event(kind="HALT", code="LIQ_CRITICAL", detail="d", payload={"dist": "0.05"})
    events = journal.risk_events(after_seq=first)
    assert [(e.seq, e.code, e.payload) for e in events] == [(second, "LIQ_CRITICAL", {"dist": "0.05"})]
    journal.set_meta("engine", "a")
    journal.set_meta("engine", "b")
    assert journal.get_meta("engine") == "b"
    assert journal.get_meta("created_ms") is not None


def test_autocheckpoint_is_off_and_checkpoint_drains_the_wal(journal: Journal) -> None:
    """Without an explicit checkpoint the WAL keeps growing past SQLite's 1000-page default; checkpoint()
    copies every frame back."""
    for n in range(1200):
        journal.record_fill("BTC_USDC", Side.BUY, fill(f"w{n}", "0.001", ts_ms=n))
    wal = Path(str(journal.path) + "-wal")
    assert wal.stat().st_size > 1000 * 4096
    result = journal.checkpoint()
    assert not result.busy
    assert result.wal_frames > 1000
    assert result.checkpointed_frames == result.wal_frames
    assert journal.statistics().last_checkpoint == result
    assert journal.integrity_check() == "ok"


async def test_checkpoint_in_a_thread_while_writing(journal: Journal) -> None:
    """checkpoint() on a worker thread (as the journal actor runs it) overlaps writes without errors."""
    done = trio.Event()

    async def checkpoints() -> None:
        while not done.is_set():
            await trio.to_thread.run_sync(journal.checkpoint)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(checkpoints)
            for n in range(300):
                journal.record_fill("BTC_USDC", Side.BUY, fill(f"c{n}", "0.001", ts_ms=n))
                await trio.lowlevel.checkpoint()
            done.set()
    assert journal.statistics().checkpoints >= 1
    assert len(journal.fills_since(0)) == 300
    assert journal.integrity_check() == "ok"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A file written by a newer engine (higher user_version) is not opened."""
    path = tmp_path / "future.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ConfigError, match="newer"):
        Journal.open(path)


def test_use_after_close(tmp_path: Path) -> None:
    """close() is idempotent and any later use is an invariant violation."""
    journal = Journal.open(tmp_path / "j.sqlite")
    journal.close()
    journal.close()
    with pytest.raises(InvariantViolation, match="after close"):
        journal.next_attempt("x")


def test_from_config(tmp_path: Path) -> None:
    """A JournalConfig opens the journal at its path with the current schema."""
    cfg = JournalConfig(path=str(tmp_path / "sub" / "j.sqlite"), checkpoint_interval_s=5.0)
    with Journal.from_config(cfg) as journal:
        assert journal.schema_version == SCHEMA_VERSION
        assert journal.path == tmp_path / "sub" / "j.sqlite"


def test_config_defaults_and_validation() -> None:
    """The defaults are sane and bad values are refused with a readable message."""
    cfg = JournalConfig()
    assert cfg.path == "var/journal.sqlite"
    assert cfg.checkpoint_interval_s > 0
    with pytest.raises(ValueError, match="must be in"):
        JournalConfig(checkpoint_interval_s=0.0)
    with pytest.raises(ValueError, match="must not be empty"):
        JournalConfig(path="")
