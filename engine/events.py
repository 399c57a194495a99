"""The messages actors exchange (the engine's own vocabulary, beside the wire events of engine.backpack).

Channels and what they carry (each a declared union; consumers ``match`` exhaustively and treat anything else
as an ``InvariantViolation``):

* feed -> cache: ``engine.market.feed_events.FeedEvent`` (decoded market events, book states, connection
  status; conflation happens in the cache, which publishes the latest ``engine.market.view.MarketView``);
* feed -> orders: :data:`AccountEvent` (private order/position/balance updates), bounded, never dropped;
* strategy -> risk: :class:`Proposal` (an ``OrderIntent`` from ``engine.nanpin``), bounded;
* risk -> orders: :data:`OrderCommand`, bounded;
* orders -> strategy: :class:`FillNotice` (wraps ``engine.nanpin.FillReport``), bounded;
* operator -> risk: :data:`Control` (halt / resume), bounded;
* orders publishes :class:`AccountSnapshot`, risk publishes :class:`RiskState` and strategy publishes
  :class:`StrategyStatus` as latest values (``engine.runtime.LatestValue``) that strategy, risk, status and
  metrics read.

Money is Decimal; every time is either integer wall-clock milliseconds (``*_ms``, exchange/wall time) or trio
clock seconds (``*_s``, for ages); never mixed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypeAlias

import attrs

from engine.backpack.events import BalanceUpdate, OrderUpdate, PositionUpdate
from engine.nanpin.types import FillReport, OrderIntent

__all__ = [
    "AccountEvent",
    "AccountSnapshot",
    "CancelAll",
    "Control",
    "FillNotice",
    "Halt",
    "LevelBand",
    "OrderCommand",
    "PlaceOrder",
    "Proposal",
    "Resume",
    "RiskState",
    "StrategyStatus",
]

_ZERO = Decimal(0)

AccountEvent: TypeAlias = OrderUpdate | PositionUpdate | BalanceUpdate


@attrs.frozen(kw_only=True)
class Proposal:
    """strategy -> risk: one intent the strategy wants, with the view it was decided on."""

    intent: OrderIntent
    decided_at_ms: int
    view_version: int


@attrs.frozen(kw_only=True)
class PlaceOrder:
    """risk -> orders: an approved intent. ``attempt`` is chosen by the orders actor from the journal."""

    intent: OrderIntent
    approved_at_ms: int


@attrs.frozen(kw_only=True)
class CancelAll:
    """risk -> orders: cancel every resting order (kill switch, operator halt, shutdown)."""

    reason: str


OrderCommand: TypeAlias = PlaceOrder | CancelAll


@attrs.frozen(kw_only=True)
class FillNotice:
    """orders -> strategy: the final filled quantity of one intent attempt (zero when the IOC expired)."""

    report: FillReport
    client_id: int
    terminal_status: str


@attrs.frozen(kw_only=True)
class Halt:
    reason: str


@attrs.frozen(kw_only=True)
class Resume:
    reason: str = "operator"


Control: TypeAlias = Halt | Resume


@attrs.frozen(kw_only=True)
class AccountSnapshot:
    """What the orders actor knows of the account, published after every change.

    ``position_qty`` / ``avg_entry`` are the strategy's own position (spot: from the journal's fills, net of
    base-asset fees, per nanpin spec 9.13(b); perp: the exchange's net position). ``equity`` is None until a
    price is known; it is never invented.
    """

    symbol: str
    quote_available: Decimal
    quote_locked: Decimal
    position_qty: Decimal
    avg_entry: Decimal
    est_liq_price: Decimal | None
    mmf: Decimal | None
    imf: Decimal | None
    equity: Decimal | None
    open_orders: int
    reconciled: bool
    as_of_ms: int


@attrs.frozen(kw_only=True)
class RiskState:
    """Risk's current stance, published after every change."""

    halted: bool
    halt_reason: str | None
    kill_switch: bool
    peak_equity: Decimal
    equity: Decimal | None
    drawdown_frac: Decimal
    blocks: tuple[tuple[str, int], ...]  # (reason code, count) since start
    approvals: int
    as_of_ms: int


@attrs.frozen(kw_only=True)
class LevelBand:
    """One ladder level as the last decision saw it: its price and the band where it may be bought."""

    name: str
    price: Decimal
    band_lo: Decimal
    band_hi: Decimal
    filled: bool


@attrs.frozen(kw_only=True)
class StrategyStatus:
    """What the strategy last decided, for the status line and metrics (never used for trading)."""

    symbol: str
    decided_at_ms: int
    price: Decimal | None
    swing_key: str | None
    levels: tuple[LevelBand, ...]
    next_level: LevelBand | None  # the highest unfilled level at or below the price's band, if any
    blocks: tuple[str, ...]  # BLOCK codes of the last decision
    entries_total: int
    halted: bool
