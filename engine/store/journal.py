"""The SQLite journal: orders (one row per attempt), their event history, fills, strategy state, risk events.

Owns one SQLite file (standard library ``sqlite3``) and its schema. Invariants:

* **One logical write = one transaction.** Every public write method is a single ``BEGIN IMMEDIATE ...
  COMMIT``; after a ``kill -9`` at any instant the file reopens consistent, holding every write whose method
  returned and none of the one that was interrupted.
* **Write-ahead.** ``record_attempt`` (status NEW) and ``record_event(order, Submitted())`` (status SENT) are
  committed before the POST goes out; after a restart a NEW attempt is known never to have been sent and a
  SENT one must be looked up by ``clientId``.
* **An order row mirrors the state machine.** ``record_event`` stores the record that
  :func:`engine.orders.fsm.apply_event` produced and appends the event to ``order_events`` in the same
  transaction; the journal never invents a status. An order's fills are the ``FillEvent`` rows of its event
  history, so :meth:`Journal.load_open_orders` rebuilds exactly what the tracker held.
* **Fills are unique per (symbol, trade id).** Inserting a known trade again is a no-op (``record_fill`` returns
  False); the same trade id with different values is an :class:`~engine.errors.InvariantViolation`.
* **Schema changes are forward migrations** (:data:`MIGRATIONS`, version in ``PRAGMA user_version``), each
  applied in its own transaction; a file newer than this code is refused.

Durability: WAL mode with ``synchronous=NORMAL``: a commit survives a process crash (the WAL is written
before ``COMMIT`` returns); only an OS crash or power cut may lose the last commits, never consistency.
Automatic checkpoints are off (``wal_autocheckpoint=0``) because one can stall a commit on the order path for
milliseconds; :meth:`Journal.checkpoint` does it on a second connection and is meant to run off the order path
(the journal actor calls it through ``trio.to_thread.run_sync`` every ``checkpoint_interval_s``).

Threading: the write/read methods share one connection guarded by a lock (call them from the actor's thread);
``checkpoint()`` uses its own connection and may run concurrently from any thread.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from engine.errors import ConfigError, FatalError, InvariantViolation
from engine.orders.fsm import (
    OPEN_STATUSES,
    Accepted,
    Cancelled,
    Expired,
    FillEvent,
    LookupFound,
    LookupNotFound,
    OrderEvent,
    OrderRecord,
    Rejected,
    Side,
    Status,
    Submitted,
    TimedOut,
    restore_order,
)
from engine.store.config import JournalConfig

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "CheckpointResult",
    "Journal",
    "JournalStatistics",
    "JournaledEvent",
    "RiskEventRecord",
    "StoredFill",
    "StrategyStateRecord",
    "decode_event",
    "encode_event",
    "migrate",
    "wall_clock_ms",
]

# Each step is applied in one transaction together with ``PRAGMA user_version = <its index + 1>``.
# Never edit a released step: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v1: attempts, their event history, the fill ledger, key/value metadata.
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
        """CREATE TABLE orders (
            client_id INTEGER PRIMARY KEY CHECK (client_id BETWEEN 0 AND 4294967295),
            intent_id TEXT NOT NULL,
            attempt INTEGER NOT NULL CHECK (attempt >= 0),
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            qty TEXT NOT NULL,
            limit_price TEXT,
            status TEXT NOT NULL,
            exchange_order_id TEXT,
            filled_qty TEXT NOT NULL,
            filled_quote TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            UNIQUE (intent_id, attempt)
        )""",
        """CREATE TABLE order_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id INTEGER NOT NULL REFERENCES orders (client_id),
            ts_ms INTEGER NOT NULL,
            kind TEXT NOT NULL,
            status_after TEXT NOT NULL,
            payload TEXT NOT NULL
        )""",
        "CREATE INDEX order_events_by_order ON order_events (client_id, seq)",
        """CREATE TABLE fills (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            symbol TEXT NOT NULL,
            trade_id TEXT NOT NULL,
            side TEXT NOT NULL,
            client_id INTEGER,
            exchange_order_id TEXT,
            qty TEXT NOT NULL,
            price TEXT NOT NULL,
            fee TEXT NOT NULL,
            fee_asset TEXT NOT NULL,
            is_maker INTEGER NOT NULL,
            ts_ms INTEGER NOT NULL,
            UNIQUE (symbol, trade_id)
        )""",
        "CREATE INDEX fills_by_ts ON fills (ts_ms)",
    ),
    # v2: persisted strategy state (survives restarts: cooldowns, filled levels) and the risk event log.
    (
        """CREATE TABLE strategy_state (
            key TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            blob TEXT NOT NULL,
            updated_ms INTEGER NOT NULL
        )""",
        """CREATE TABLE risk_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ts_ms INTEGER NOT NULL,
            kind TEXT NOT NULL,
            code TEXT NOT NULL,
            detail TEXT NOT NULL,
            payload TEXT NOT NULL
        )""",
    ),
    # v3: intents (what each attempt was for), the exchange-reported fill quantity and the last reason on
    # each attempt, and an index for the startup query of open orders. Existing attempts get their intent
    # rows backfilled with an empty payload.
    (
        """CREATE TABLE intents (
            intent_id TEXT PRIMARY KEY,
            symbol TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_ms INTEGER NOT NULL
        )""",
        "ALTER TABLE orders ADD COLUMN reported_filled_qty TEXT NOT NULL DEFAULT '0'",
        "ALTER TABLE orders ADD COLUMN reason TEXT",
        "CREATE INDEX orders_by_status ON orders (status)",
        """INSERT INTO intents (intent_id, symbol, payload, created_ms)
            SELECT intent_id, MIN(symbol), '{}', MIN(created_ms) FROM orders GROUP BY intent_id""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_OPEN_STATUS_VALUES = tuple(sorted(s.value for s in OPEN_STATUSES))
_ORDER_COLUMNS = (
    "client_id, intent_id, attempt, symbol, side, qty, limit_price, status, exchange_order_id, "
    "reported_filled_qty, reason, created_ms"
)
_FILL_COLUMNS = (
    "seq, symbol, trade_id, side, client_id, exchange_order_id, qty, price, fee, fee_asset, is_maker, ts_ms"
)


def wall_clock_ms() -> int:
    """Default timestamp source for journal rows (injectable via ``Journal.open(now_ms=...)``)."""
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------------------------------------
# Records returned by reads


@attrs.frozen(kw_only=True)
class StoredFill:
    """One row of the fill ledger. ``client_id`` is None for a fill not tied to a journaled attempt."""

    seq: int
    symbol: str
    side: Side
    client_id: int | None
    fill: FillEvent


@attrs.frozen(kw_only=True)
class JournaledEvent:
    """One row of an attempt's append-only history. ``kind`` is the event class name, or ``"Created"``."""

    seq: int
    client_id: int
    ts_ms: int
    kind: str
    status_after: Status
    payload: dict[str, Any]


@attrs.frozen(kw_only=True)
class StrategyStateRecord:
    """The latest saved blob for a strategy key; ``version`` counts saves, starting at 1."""

    key: str
    version: int
    blob: dict[str, Any]
    updated_ms: int


@attrs.frozen(kw_only=True)
class RiskEventRecord:
    seq: int
    ts_ms: int
    kind: str
    code: str
    detail: str
    payload: dict[str, Any]


@attrs.frozen(kw_only=True)
class CheckpointResult:
    """``PRAGMA wal_checkpoint`` outcome: ``busy`` means it could not finish (a reader or writer held it)."""

    mode: str
    busy: bool
    wal_frames: int
    checkpointed_frames: int
    duration_s: float


@attrs.frozen(kw_only=True)
class JournalStatistics:
    commits: int
    checkpoints: int
    last_checkpoint: CheckpointResult | None


# --------------------------------------------------------------------------------------------------------
# JSON encoding of payloads (events, intents, strategy blobs)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _dumps(payload: Mapping[str, Any], what: str) -> str:
    try:
        return json.dumps(payload, default=_json_default, separators=(",", ":"), sort_keys=True,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvariantViolation(f"{what} is not JSON-serialisable: {exc}") from exc


def _loads(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise InvariantViolation(f"journal payload is not a JSON object: {text[:80]!r}")
    return value


def encode_event(event: OrderEvent) -> dict[str, Any]:
    """The JSON payload stored for ``event`` (Decimals as strings, enums as their values)."""
    def serialise(_inst: object, _field: object, value: object) -> object:
        return _json_default(value) if isinstance(value, Decimal | enum.Enum) else value

    return attrs.asdict(event, value_serializer=serialise)


def _dec(payload: Mapping[str, Any], key: str) -> Decimal:
    return Decimal(str(payload[key]))


def _opt_dec(payload: Mapping[str, Any], key: str) -> Decimal | None:
    value = payload.get(key)
    return None if value is None else Decimal(str(value))


def _opt_str(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return None if value is None else str(value)


def decode_event(kind: str, payload: Mapping[str, Any]) -> OrderEvent:
    """Rebuild an event from its journaled ``kind`` and payload (named constructors, one per event class)."""
    try:
        match kind:
            case "Submitted":
                return Submitted()
            case "Accepted":
                return Accepted(exchange_order_id=str(payload["exchange_order_id"]))
            case "FillEvent":
                return FillEvent(
                    trade_id=str(payload["trade_id"]),
                    qty=_dec(payload, "qty"),
                    price=_dec(payload, "price"),
                    fee=_dec(payload, "fee"),
                    fee_asset=str(payload["fee_asset"]),
                    is_maker=bool(payload["is_maker"]),
                    ts_ms=int(payload["ts_ms"]),
                    exchange_order_id=_opt_str(payload, "exchange_order_id"),
                )
            case "Cancelled":
                return Cancelled(executed_qty=_opt_dec(payload, "executed_qty"),
                                 exchange_order_id=_opt_str(payload, "exchange_order_id"))
            case "Expired":
                return Expired(reason=str(payload["reason"]), executed_qty=_opt_dec(payload, "executed_qty"),
                               exchange_order_id=_opt_str(payload, "exchange_order_id"))
            case "Rejected":
                return Rejected(code=str(payload["code"]), message=str(payload["message"]))
            case "TimedOut":
                return TimedOut()
            case "LookupFound":
                return LookupFound(
                    status=Status(payload["status"]),
                    executed_qty=_dec(payload, "executed_qty"),
                    exchange_order_id=str(payload["exchange_order_id"]),
                    executed_quote_qty=_opt_dec(payload, "executed_quote_qty"),
                )
            case "LookupNotFound":
                return LookupNotFound()
            case _:
                raise InvariantViolation(f"journal holds an unknown order event kind {kind!r}")
    except (KeyError, ValueError, ArithmeticError) as exc:
        raise InvariantViolation(f"journal holds a malformed {kind} payload: {exc!r}") from exc


# --------------------------------------------------------------------------------------------------------
# Schema


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring ``conn``'s schema forward to ``target`` (default: current) and return the version now in place.

    Each step runs in its own transaction with its ``user_version`` bump, so an interrupted migration leaves
    the file at the last completed version. ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    if not 0 <= target <= SCHEMA_VERSION:
        raise InvariantViolation(f"schema target must be in [0, {SCHEMA_VERSION}]; got {target}")
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise ConfigError(
            f"journal schema version {current} is newer than this engine's {SCHEMA_VERSION}: "
            "run a newer engine or point journal.path at another file"
        )
    while current < target:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[current]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {current + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        current += 1
    return current


@contextmanager
def _sqlite_errors(what: str) -> Iterator[None]:
    """The one place where sqlite3 exceptions become engine errors: a failing journal is fatal."""
    try:
        yield
    except sqlite3.Error as exc:
        raise FatalError(f"journal: {what} failed: {exc}") from exc


# --------------------------------------------------------------------------------------------------------
# The journal


class Journal:
    """A synchronous, crash-safe journal on one SQLite file. Create with :meth:`open`, finish with
    :meth:`close` (or use it as a context manager)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, now_ms: Callable[[], int],
                 busy_timeout_ms: int) -> None:
        self._conn = conn
        self._path = path
        self._now_ms = now_ms
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._closed = False
        self._commits = 0
        self._checkpoints = 0
        self._last_checkpoint: CheckpointResult | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        now_ms: Callable[[], int] = wall_clock_ms,
        busy_timeout_ms: int = 5000,
        journal_size_limit_bytes: int = 64 * 1024 * 1024,
        autocheckpoint_pages: int = 0,
    ) -> Journal:
        """Open (creating the file and its directory if needed) and migrate the journal at ``path``.

        ``autocheckpoint_pages`` is SQLite's ``wal_autocheckpoint``; keep the default 0 in the engine and run
        :meth:`checkpoint` off the order path (a non-zero value exists for the benchmark's comparison).
        Raises ConfigError for a file written by a newer schema, FatalError if SQLite cannot open it.
        """
        file = Path(path)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FatalError(f"journal: cannot create the directory of {file}: {exc}") from exc
        with _sqlite_errors(f"opening {file}"):
            conn = sqlite3.connect(file, isolation_level=None, check_same_thread=False)
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise FatalError(f"journal: {file} cannot use WAL mode (got {mode!r})")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(f"PRAGMA wal_autocheckpoint = {int(autocheckpoint_pages)}")
                conn.execute(f"PRAGMA journal_size_limit = {int(journal_size_limit_bytes)}")
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                conn.execute("PRAGMA foreign_keys = ON")
                migrate(conn)
                journal = cls(conn, file, now_ms=now_ms, busy_timeout_ms=busy_timeout_ms)
                if journal.get_meta("created_ms") is None:
                    journal.set_meta("created_ms", str(now_ms()))
            except BaseException:
                conn.close()
                raise
        return journal

    @classmethod
    def from_config(cls, cfg: JournalConfig, *, now_ms: Callable[[], int] = wall_clock_ms) -> Journal:
        """Open the journal a :class:`JournalConfig` describes."""
        return cls.open(cfg.path, now_ms=now_ms, busy_timeout_ms=cfg.busy_timeout_ms,
                        journal_size_limit_bytes=cfg.journal_size_limit_bytes)

    def close(self) -> None:
        """Close both connections. Idempotent. SQLite checkpoints the WAL when the last connection closes."""
        with self._checkpoint_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            with _sqlite_errors("close"):
                if self._checkpoint_conn is not None:
                    self._checkpoint_conn.close()
                    self._checkpoint_conn = None
                self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def schema_version(self) -> int:
        with self._read("schema_version") as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def statistics(self) -> JournalStatistics:
        return JournalStatistics(commits=self._commits, checkpoints=self._checkpoints,
                                 last_checkpoint=self._last_checkpoint)

    # -- transactions ---------------------------------------------------------------------------------

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One logical write: BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        with self._lock, _sqlite_errors(what):
            self._ensure_open()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._commits += 1

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock, _sqlite_errors(what):
            self._ensure_open()
            yield self._conn

    def _ensure_open(self) -> None:
        if self._closed:
            raise InvariantViolation(f"journal {self._path} used after close()")

    # -- intents and attempts -------------------------------------------------------------------------

    def record_intent(self, intent_id: str, symbol: str, payload: Mapping[str, Any]) -> bool:
        """Remember what an intent is (its OrderIntent as JSON). Idempotent; returns True if it was new."""
        text = _dumps(payload, f"intent {intent_id!r}")
        with self._write("record_intent") as conn:
            cur = conn.execute(
                "INSERT INTO intents (intent_id, symbol, payload, created_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (intent_id, symbol, text, self._now_ms()),
            )
            return cur.rowcount == 1

    def load_intent(self, intent_id: str) -> dict[str, Any] | None:
        """The payload given to :meth:`record_intent`, or None."""
        with self._read("load_intent") as conn:
            row = conn.execute("SELECT payload FROM intents WHERE intent_id = ?", (intent_id,)).fetchone()
        return None if row is None else _loads(row[0])

    def record_attempt(self, order: OrderRecord) -> bool:
        """Journal a new attempt (status NEW) before anything is sent; returns True if it was new.

        Recording the same attempt again is a no-op (False). A different attempt with the same client id
        (a CRC-32 collision) raises InvariantViolation: the caller must use another attempt number.
        """
        if order.status is not Status.NEW:
            raise InvariantViolation(
                f"record_attempt: attempt {order.client_id} must be NEW, not {order.status.value}"
            )
        now = self._now_ms()
        created = _dumps(
            {"intent_id": order.intent_id, "attempt": order.attempt, "symbol": order.symbol,
             "side": order.side, "qty": order.qty, "limit_price": order.limit_price},
            "attempt",
        )
        with self._write("record_attempt") as conn:
            cur = conn.execute(
                "INSERT INTO orders (client_id, intent_id, attempt, symbol, side, qty, limit_price, status, "
                "exchange_order_id, filled_qty, filled_quote, reported_filled_qty, reason, created_ms, "
                "updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, '0', '0', '0', NULL, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (order.client_id, order.intent_id, order.attempt, order.symbol, order.side.value,
                 str(order.qty), None if order.limit_price is None else str(order.limit_price),
                 order.status.value, order.created_ms, now),
            )
            if cur.rowcount == 0:
                row = conn.execute("SELECT intent_id, attempt FROM orders WHERE client_id = ?",
                                   (order.client_id,)).fetchone()
                if row is None or (row[0], row[1]) != (order.intent_id, order.attempt):
                    raise InvariantViolation(
                        f"client id {order.client_id} of {order.intent_id!r} attempt {order.attempt} "
                        f"is already used by {row[0] if row else '?'!r} attempt {row[1] if row else '?'}"
                    )
                return False
            conn.execute(
                "INSERT INTO order_events (client_id, ts_ms, kind, status_after, payload) "
                "VALUES (?, ?, 'Created', ?, ?)",
                (order.client_id, now, order.status.value, created),
            )
            return True

    def record_event(self, order: OrderRecord, event: OrderEvent) -> None:
        """Journal ``event`` and the record it produced (``order`` is the state *after* applying it).

        Call it for every :class:`~engine.orders.fsm.Outcome` with ``changed``. One transaction: the order row
        is updated, the event appended to ``order_events``, and a fill also lands in the fill ledger.
        """
        now = self._now_ms()
        kind = type(event).__name__
        payload = _dumps(encode_event(event), f"{kind} event")
        with self._write("record_event") as conn:
            cur = conn.execute(
                "UPDATE orders SET status = ?, exchange_order_id = ?, filled_qty = ?, filled_quote = ?, "
                "reported_filled_qty = ?, reason = ?, updated_ms = ? WHERE client_id = ?",
                (order.status.value, order.exchange_order_id, str(order.filled_qty), str(order.filled_quote),
                 str(order.reported_filled_qty), order.reason, now, order.client_id),
            )
            if cur.rowcount != 1:
                raise InvariantViolation(f"record_event: attempt {order.client_id} was never journaled")
            conn.execute(
                "INSERT INTO order_events (client_id, ts_ms, kind, status_after, payload) VALUES (?, ?, ?, ?, ?)",
                (order.client_id, now, kind, order.status.value, payload),
            )
            if isinstance(event, FillEvent):
                self._insert_fill(conn, order.symbol, order.side, event, order.client_id)

    def record_fill(self, symbol: str, side: Side, fill: FillEvent, *, client_id: int | None = None) -> bool:
        """Add a fill to the ledger (e.g. from fills history during reconciliation); True if it was new.

        Idempotent per (symbol, trade id). This does not touch any order: fills of tracked attempts go
        through the state machine and :meth:`record_event`.
        """
        with self._write("record_fill") as conn:
            return self._insert_fill(conn, symbol, side, fill, client_id)

    @staticmethod
    def _insert_fill(conn: sqlite3.Connection, symbol: str, side: Side, fill: FillEvent,
                     client_id: int | None) -> bool:
        cur = conn.execute(
            "INSERT INTO fills (symbol, trade_id, side, client_id, exchange_order_id, qty, price, fee, "
            "fee_asset, is_maker, ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (symbol, fill.trade_id, side.value, client_id, fill.exchange_order_id, str(fill.qty),
             str(fill.price), str(fill.fee), fill.fee_asset, int(fill.is_maker), fill.ts_ms),
        )
        if cur.rowcount == 1:
            return True
        row = conn.execute(
            f"SELECT {_FILL_COLUMNS} FROM fills WHERE symbol = ? AND trade_id = ?", (symbol, fill.trade_id)
        ).fetchone()
        known = _fill_from_row(row)
        if not known.fill.same_trade(fill) or known.side is not side:
            raise InvariantViolation(f"trade {symbol}/{fill.trade_id} journaled with different values")
        if known.client_id is None and client_id is not None:
            # A fill first seen in history, now matched to its attempt: attribute it.
            conn.execute("UPDATE fills SET client_id = ? WHERE seq = ?", (client_id, known.seq))
        elif client_id is not None and known.client_id != client_id:
            raise InvariantViolation(
                f"trade {symbol}/{fill.trade_id} belongs to client id {known.client_id}, not {client_id}"
            )
        return False

    # -- reading orders -------------------------------------------------------------------------------

    def load_order(self, client_id: int) -> OrderRecord | None:
        """One attempt as the state machine last left it."""
        with self._read("load_order") as conn:
            rows = conn.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_id = ?",
                                (client_id,)).fetchall()
            found = self._restore(conn, rows)
        return found[0] if found else None

    def load_open_orders(self) -> list[OrderRecord]:
        """Every attempt not in a terminal status (NEW, SENT, ACKNOWLEDGED, PARTIALLY_FILLED, UNKNOWN),
        oldest first: what the orders actor must reconcile on start."""
        marks = ", ".join("?" * len(_OPEN_STATUS_VALUES))
        with self._read("load_open_orders") as conn:
            rows = conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status IN ({marks}) ORDER BY created_ms, client_id",
                _OPEN_STATUS_VALUES,
            ).fetchall()
            return self._restore(conn, rows)

    def load_orders_by_intent(self, intent_id: str) -> list[OrderRecord]:
        """Every attempt of ``intent_id``, by attempt number."""
        with self._read("load_orders_by_intent") as conn:
            rows = conn.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE intent_id = ? ORDER BY attempt",
                                (intent_id,)).fetchall()
            return self._restore(conn, rows)

    def next_attempt(self, intent_id: str) -> int:
        """The attempt number to use for the next send of ``intent_id`` (0 if never attempted)."""
        with self._read("next_attempt") as conn:
            row = conn.execute("SELECT MAX(attempt) FROM orders WHERE intent_id = ?", (intent_id,)).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def order_events(self, client_id: int) -> list[JournaledEvent]:
        """The append-only history of one attempt, oldest first."""
        with self._read("order_events") as conn:
            rows = conn.execute(
                "SELECT seq, client_id, ts_ms, kind, status_after, payload FROM order_events "
                "WHERE client_id = ? ORDER BY seq",
                (client_id,),
            ).fetchall()
        return [
            JournaledEvent(seq=r[0], client_id=r[1], ts_ms=r[2], kind=r[3], status_after=Status(r[4]),
                           payload=_loads(r[5]))
            for r in rows
        ]

    @staticmethod
    def _restore(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> list[OrderRecord]:
        orders: list[OrderRecord] = []
        for r in rows:
            fills = [
                decode_event("FillEvent", _loads(p[0]))
                for p in conn.execute(
                    "SELECT payload FROM order_events WHERE client_id = ? AND kind = 'FillEvent' ORDER BY seq",
                    (r[0],),
                )
            ]
            try:
                orders.append(restore_order(
                    client_id=int(r[0]), intent_id=r[1], attempt=int(r[2]), symbol=r[3], side=Side(r[4]),
                    qty=Decimal(r[5]), limit_price=None if r[6] is None else Decimal(r[6]), status=Status(r[7]),
                    exchange_order_id=r[8], reported_filled_qty=Decimal(r[9]), reason=r[10],
                    created_ms=int(r[11]), fills=[f for f in fills if isinstance(f, FillEvent)],
                ))
            except (ValueError, ArithmeticError) as exc:
                raise InvariantViolation(f"journal row for client id {r[0]} is malformed: {exc!r}") from exc
        return orders

    # -- fills ----------------------------------------------------------------------------------------

    def fills_since(self, ts_ms: int = 0, *, symbol: str | None = None) -> list[StoredFill]:
        """Ledger fills with trade time >= ``ts_ms`` (optionally one symbol), in trade-time order."""
        with self._read("fills_since") as conn:
            if symbol is None:
                rows = conn.execute(f"SELECT {_FILL_COLUMNS} FROM fills WHERE ts_ms >= ? ORDER BY ts_ms, seq",
                                    (ts_ms,)).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_FILL_COLUMNS} FROM fills WHERE ts_ms >= ? AND symbol = ? ORDER BY ts_ms, seq",
                    (ts_ms, symbol),
                ).fetchall()
        return [_fill_from_row(r) for r in rows]

    # -- strategy state, risk events, metadata --------------------------------------------------------

    def save_strategy_state(self, key: str, blob: Mapping[str, Any]) -> int:
        """Replace the blob stored under ``key`` and return its new version (1 on the first save)."""
        text = _dumps(blob, f"strategy state {key!r}")
        with self._write("save_strategy_state") as conn:
            row = conn.execute(
                "INSERT INTO strategy_state (key, version, blob, updated_ms) VALUES (?, 1, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET version = version + 1, blob = excluded.blob, "
                "updated_ms = excluded.updated_ms RETURNING version",
                (key, text, self._now_ms()),
            ).fetchone()
            return int(row[0])

    def load_strategy_state(self, key: str) -> StrategyStateRecord | None:
        with self._read("load_strategy_state") as conn:
            row = conn.execute("SELECT key, version, blob, updated_ms FROM strategy_state WHERE key = ?",
                               (key,)).fetchone()
        if row is None:
            return None
        return StrategyStateRecord(key=row[0], version=int(row[1]), blob=_loads(row[2]), updated_ms=int(row[3]))

    def record_risk_event(self, *, kind: str, code: str, detail: str,
                          payload: Mapping[str, Any] | None = None) -> int:
        """Append a risk event (BLOCK / WARN / HALT and its code); returns its sequence number."""
        text = _dumps(payload or {}, f"risk event {code}")
        with self._write("record_risk_event") as conn:
            cur = conn.execute(
                "INSERT INTO risk_events (ts_ms, kind, code, detail, payload) VALUES (?, ?, ?, ?, ?)",
                (self._now_ms(), kind, code, detail, text),
            )
            return int(cur.lastrowid or 0)

    def risk_events(self, *, after_seq: int = 0, limit: int = 1000) -> list[RiskEventRecord]:
        """Risk events with sequence number > ``after_seq``, oldest first, at most ``limit``."""
        with self._read("risk_events") as conn:
            rows = conn.execute(
                "SELECT seq, ts_ms, kind, code, detail, payload FROM risk_events WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [RiskEventRecord(seq=r[0], ts_ms=r[1], kind=r[2], code=r[3], detail=r[4], payload=_loads(r[5]))
                for r in rows]

    def set_meta(self, key: str, value: str) -> None:
        with self._write("set_meta") as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def get_meta(self, key: str) -> str | None:
        with self._read("get_meta") as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- maintenance ----------------------------------------------------------------------------------

    def checkpoint(self, mode: str = "PASSIVE") -> CheckpointResult:
        """Copy WAL frames into the database file, on a second connection, without the write lock.

        Blocking (milliseconds with a large WAL): run it off the order path, e.g.
        ``await trio.to_thread.run_sync(journal.checkpoint)``. ``PASSIVE`` never waits for writers;
        ``TRUNCATE`` (used at shutdown) also empties the WAL file.
        """
        if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
            raise InvariantViolation(f"checkpoint mode must be PASSIVE, FULL, RESTART or TRUNCATE; got {mode!r}")
        with self._checkpoint_lock, _sqlite_errors("checkpoint"):
            self._ensure_open()
            if self._checkpoint_conn is None:
                self._checkpoint_conn = sqlite3.connect(self._path, isolation_level=None,
                                                        check_same_thread=False)
                self._checkpoint_conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            start = time.perf_counter()
            busy, log, done = self._checkpoint_conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            result = CheckpointResult(mode=mode, busy=bool(busy), wal_frames=int(log),
                                      checkpointed_frames=int(done), duration_s=time.perf_counter() - start)
            self._checkpoints += 1
            self._last_checkpoint = result
            return result

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a sound file, otherwise SQLite's first problems."""
        with self._read("integrity_check") as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)


def _fill_from_row(row: Sequence[Any]) -> StoredFill:
    return StoredFill(
        seq=int(row[0]),
        symbol=row[1],
        side=Side(row[3]),
        client_id=None if row[4] is None else int(row[4]),
        fill=FillEvent(
            trade_id=row[2],
            exchange_order_id=row[5],
            qty=Decimal(row[6]),
            price=Decimal(row[7]),
            fee=Decimal(row[8]),
            fee_asset=row[9],
            is_maker=bool(row[10]),
            ts_ms=int(row[11]),
        ),
    )
