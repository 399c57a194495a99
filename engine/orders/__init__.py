"""Pure order lifecycle: deterministic client ids (:mod:`.ids`) and the order state machine (:mod:`.fsm`).

Nothing here performs I/O, imports trio/httpx or reads a clock; the orders actor drives it and the journal
(:mod:`engine.store.journal`) persists what it produces.
"""

from __future__ import annotations

from engine.orders.fsm import (
    OPEN_STATUSES as OPEN_STATUSES,
)
from engine.orders.fsm import (
    TERMINAL_STATUSES as TERMINAL_STATUSES,
)
from engine.orders.fsm import (
    TRANSITIONS as TRANSITIONS,
)
from engine.orders.fsm import (
    Accepted as Accepted,
)
from engine.orders.fsm import (
    Cancelled as Cancelled,
)
from engine.orders.fsm import (
    EventType as EventType,
)
from engine.orders.fsm import (
    Expired as Expired,
)
from engine.orders.fsm import (
    FillEvent as FillEvent,
)
from engine.orders.fsm import (
    InvalidTransition as InvalidTransition,
)
from engine.orders.fsm import (
    LookupFound as LookupFound,
)
from engine.orders.fsm import (
    LookupNotFound as LookupNotFound,
)
from engine.orders.fsm import (
    OrderEvent as OrderEvent,
)
from engine.orders.fsm import (
    OrderRecord as OrderRecord,
)
from engine.orders.fsm import (
    OrderTracker as OrderTracker,
)
from engine.orders.fsm import (
    Outcome as Outcome,
)
from engine.orders.fsm import (
    Rejected as Rejected,
)
from engine.orders.fsm import (
    Side as Side,
)
from engine.orders.fsm import (
    Status as Status,
)
from engine.orders.fsm import (
    Submitted as Submitted,
)
from engine.orders.fsm import (
    TimedOut as TimedOut,
)
from engine.orders.fsm import (
    apply_event as apply_event,
)
from engine.orders.fsm import (
    event_kind as event_kind,
)
from engine.orders.fsm import (
    new_order as new_order,
)
from engine.orders.fsm import (
    restore_order as restore_order,
)
from engine.orders.fsm import (
    status_from_exchange as status_from_exchange,
)
from engine.orders.ids import attempt_key as attempt_key
from engine.orders.ids import client_id_for as client_id_for

__all__ = [
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "Accepted",
    "Cancelled",
    "EventType",
    "Expired",
    "FillEvent",
    "InvalidTransition",
    "LookupFound",
    "LookupNotFound",
    "OrderEvent",
    "OrderRecord",
    "OrderTracker",
    "Outcome",
    "Rejected",
    "Side",
    "Status",
    "Submitted",
    "TimedOut",
    "apply_event",
    "attempt_key",
    "client_id_for",
    "event_kind",
    "new_order",
    "restore_order",
    "status_from_exchange",
]
