"""Schema migrations: a v1 file is carried forward with its data, and each step is all-or-nothing."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import FatalError
from engine.orders.fsm import FillEvent, Side, Status
from engine.orders.ids import client_id_for
from engine.store.journal import MIGRATIONS, SCHEMA_VERSION, Journal, migrate

INTENT = "nanpin:BTC_USDC:2024-03-01:61.8"


def make_v1(path: Path) -> int:
    """A journal file as engine schema v1 left it: one partly filled attempt with its history."""
    cid = client_id_for(INTENT, 0)
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    conn.execute(
        "INSERT INTO orders (client_id, intent_id, attempt, symbol, side, qty, limit_price, status, "
        "exchange_order_id, filled_qty, filled_quote, created_ms, updated_ms) "
        "VALUES (?, ?, 0, 'BTC_USDC', 'Bid', '0.2', '65000', 'PARTIALLY_FILLED', 'E1', '0.05', '3249.5', 10, 20)",
        (cid, INTENT),
    )
    fill_payload = ('{"exchange_order_id":"E1","fee":"0.00005","fee_asset":"BTC","is_maker":true,'
                    '"price":"64990","qty":"0.05","trade_id":"777","ts_ms":15}')
    for kind, status, payload in (
        ("Submitted", "SENT", "{}"),
        ("Accepted", "ACKNOWLEDGED", '{"exchange_order_id":"E1"}'),
        ("FillEvent", "PARTIALLY_FILLED", fill_payload),
    ):
        conn.execute("INSERT INTO order_events (client_id, ts_ms, kind, status_after, payload) "
                     "VALUES (?, 15, ?, ?, ?)", (cid, kind, status, payload))
    conn.execute(
        "INSERT INTO fills (symbol, trade_id, side, client_id, exchange_order_id, qty, price, fee, fee_asset, "
        "is_maker, ts_ms) VALUES ('BTC_USDC', '777', 'Bid', ?, 'E1', '0.05', '64990', '0.00005', 'BTC', 1, 15)",
        (cid,),
    )
    conn.close()
    return cid


def test_v1_file_migrates_with_its_data(tmp_path: Path) -> None:
    """Opening a v1 journal upgrades it to the current schema and the open attempt, its fill and its history
    come back intact, with the new columns at their neutral values."""
    path = tmp_path / "v1.sqlite"
    cid = make_v1(path)
    with Journal.open(path) as journal:
        assert journal.schema_version == SCHEMA_VERSION
        (restored,) = journal.load_open_orders()
        assert restored.client_id == cid
        assert restored.status is Status.PARTIALLY_FILLED
        assert restored.filled_qty == Decimal("0.05")
        assert restored.reported_filled_qty == 0
        assert restored.reason is None
        assert restored.fills == (FillEvent(trade_id="777", qty=Decimal("0.05"), price=Decimal("64990"),
                                            fee=Decimal("0.00005"), fee_asset="BTC", is_maker=True, ts_ms=15,
                                            exchange_order_id="E1"),)
        assert journal.next_attempt(INTENT) == 1
        assert journal.load_intent(INTENT) == {}  # backfilled by the v3 step
        assert journal.record_fill("BTC_USDC", Side.BUY, restored.fills[0], client_id=cid) is False
        assert journal.save_strategy_state("nanpin", {"ok": True}) == 1  # a v2 table
        assert journal.integrity_check() == "ok"


def test_migration_step_is_atomic(tmp_path: Path) -> None:
    """If a step fails, none of it is applied and the file stays at the previous version."""
    path = tmp_path / "v2.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=2)
    conn.execute("CREATE TABLE intents (x INTEGER)")  # makes the v3 step's CREATE TABLE fail
    conn.close()
    with pytest.raises(FatalError):
        Journal.open(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    columns = {row[1] for row in conn.execute("PRAGMA table_info(orders)")}
    conn.close()
    assert "reported_filled_qty" not in columns  # the ALTER TABLE in the same step was rolled back


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    """Migrating an up-to-date file does nothing and reports the current version."""
    conn = sqlite3.connect(tmp_path / "j.sqlite", isolation_level=None)
    assert migrate(conn) == SCHEMA_VERSION == len(MIGRATIONS)
    assert migrate(conn) == SCHEMA_VERSION
    conn.close()
