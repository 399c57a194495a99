"""Value types of the nanpin strategy: its inputs, persisted state, outputs and fill reports (pure).

Owns the vocabulary of ``nanpin-strategy.md`` section 1. Every class is a frozen, slotted, keyword-only attrs
class; updates use ``attrs.evolve``. Money, prices and quantities are ``Decimal``; indicator values in
:class:`Diagnostics` are ``float``. Datetimes are expected timezone-aware UTC; the strategy treats a naive
datetime as UTC rather than failing (it is total).

Invariants:

* :class:`StrategyState` has a zero value (``StrategyState()``) for every field, so a fresh strategy needs no
  persisted data.
* ``client_id`` is CRC-32/ISO-HDLC (``zlib.crc32``) of the UTF-8 attempt id: the intent id for attempt 0 and
  ``intent_id + "#" + str(n)`` for retry ``n`` (spec 9.9), so it always fits Backpack's uint32 ``clientId``.
* ``level_last_fill_at`` is keyed by the level ratio as written in ``[[levels]]`` (spec 9.15) and is a plain
  dict that nobody mutates: changes build a new dict.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import attrs

from engine.orders import ids as orders_ids

__all__ = [
    "Account",
    "Bar",
    "Decision",
    "DecisionInput",
    "Diagnostics",
    "FearGreed",
    "FillReport",
    "LevelDiag",
    "LiqCluster",
    "MarketRules",
    "OrderIntent",
    "PriceObs",
    "Position",
    "Projection",
    "RiskEvent",
    "StrategyState",
    "attempt_client_id",
    "client_id_for",
]

_ZERO = Decimal(0)


def client_id_for(intent_id: str) -> int:
    """uint32 client id of an intent's first attempt: CRC-32 of its UTF-8 bytes (spec 1.3)."""
    return orders_ids.client_id_for(intent_id, 0)


def attempt_client_id(intent_id: str, n: int) -> tuple[str, int]:
    """Attempt id and client id of send number ``n`` of an intent (spec 9.9).

    Attempt 0 is the intent id itself; retry ``n >= 1`` is ``intent_id#n``. Each attempt therefore has its
    own client id, and a lookup by ``clientId`` finds exactly one attempt. The mapping itself lives in
    ``engine.orders.ids``, which the orders actor uses, so the two can never disagree.
    """
    return orders_ids.attempt_key(intent_id, n), orders_ids.client_id_for(intent_id, n)


@attrs.frozen(kw_only=True)
class Bar:
    """One closed daily bar starting at 00:00 UTC."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@attrs.frozen(kw_only=True)
class PriceObs:
    """Reference price: the perp mark price, or the spot mid of best bid and ask (spec 9.13a)."""

    value: Decimal
    ts: datetime


@attrs.frozen(kw_only=True)
class Account:
    """Perp: ``equity`` = netEquity, ``available`` = netEquityAvailable. Spot: spec 9.13 (c), (d)."""

    equity: Decimal
    available: Decimal
    imf: Decimal | None = None
    # The account's own taker fee rate when the exchange reports it; it wins over the config (spec 9.15).
    taker_fee_frac: Decimal | None = None


@attrs.frozen(kw_only=True)
class Position:
    """The long position this strategy holds in the market (qty 0 when flat)."""

    qty: Decimal = _ZERO
    avg_entry: Decimal = _ZERO
    est_liq_price: Decimal | None = None
    mmf: Decimal | None = None


@attrs.frozen(kw_only=True)
class FearGreed:
    """An external fear index observation on the 0-100 scale."""

    value: float
    ts: datetime


@attrs.frozen(kw_only=True)
class LiqCluster:
    """A liquidation cluster from a heatmap provider; ``side`` is ``long_liq`` or ``short_liq``."""

    price: Decimal
    notional_usd: Decimal
    side: str
    observed_at: datetime
    source: str


@attrs.frozen(kw_only=True)
class MarketRules:
    """Exchange filters of the market."""

    step_size: Decimal
    tick_size: Decimal
    min_qty: Decimal
    min_notional: Decimal = _ZERO


@attrs.frozen(kw_only=True)
class DecisionInput:
    """Everything one decision sees; ``price`` is None when no price is available at all."""

    now: datetime
    bars: tuple[Bar, ...]
    price: PriceObs | None
    account: Account
    position: Position
    rules: MarketRules
    fear_greed: FearGreed | None = None
    clusters: tuple[LiqCluster, ...] = ()


@attrs.frozen(kw_only=True)
class StrategyState:
    """Persisted bookkeeping (spec 1.2); the defaults are the zero value.

    Two fields extend the spec: ``day_delever_count`` numbers deleverage intents within ``day``
    (spec 9.5), and ``recent_fill_intents`` remembers the last few intent ids that had a fill so that
    ``entries_total`` counts each intent once however many fill reports it gets (spec 9.7).
    """

    swing_key: str | None = None
    filled_levels: frozenset[str] = frozenset()
    last_entry_at: datetime | None = None
    # Excluded from the hash only (a dict is unhashable); equality still compares it.
    level_last_fill_at: dict[str, datetime] = attrs.field(factory=dict, hash=False)
    entries_total: int = 0
    legacy_margin_deployed: Decimal = _ZERO
    legacy_budget_base: Decimal | None = None
    day: date | None = None
    day_start_equity: Decimal = _ZERO
    day_bought_notional: Decimal = _ZERO
    peak_equity: Decimal = _ZERO
    halted: bool = False
    halt_reason: str | None = None
    day_delever_count: int = 0
    recent_fill_intents: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Projection:
    """The position and risk after a full fill of an intent."""

    position_qty: Decimal
    avg_entry: Decimal
    account_leverage: Decimal
    liq_price: Decimal | None
    liq_distance: Decimal | None


@attrs.frozen(kw_only=True)
class OrderIntent:
    """An order the execution layer should place (spec 1.3, 3.9, 9.5)."""

    intent_id: str
    client_id: int
    symbol: str
    side: str
    reduce_only: bool
    order_type: str
    qty: Decimal
    limit_price: Decimal
    ref_price: Decimal
    notional: Decimal
    level: str
    swing_key: str
    entry_leverage: Decimal
    projected: Projection
    reason: str


@attrs.frozen(kw_only=True)
class RiskEvent:
    """``kind`` is BLOCK, WARN or HALT; ``code`` names the condition (spec 3.2, 3.5, 4, 9.3)."""

    kind: str
    code: str
    detail: str


@attrs.frozen(kw_only=True)
class LevelDiag:
    """One level as the decision saw it; ``skip`` says why it is not a candidate (empty if it is)."""

    name: str
    ratio: float
    price: Decimal
    band_lo: Decimal
    band_hi: Decimal
    dist: float
    in_window: bool
    leverage: float
    confluence: float
    score: float
    skip: str


@attrs.frozen(kw_only=True)
class Diagnostics:
    """Every indicator, level, score and cap of one decision, for logs and tests (None = not computed)."""

    price: Decimal | None = None
    n_bars: int = 0
    ath: Decimal | None = None
    hmax: Decimal | None = None
    drawdown: float | None = None
    days_since_ath: int | None = None
    vol_pct: float | None = None
    mom_pct: float | None = None
    fg_proxy: float | None = None
    fg: float | None = None
    fg_label: str = ""
    regime: str | None = None
    cooldown_h: float | None = None
    swing_bars: int | None = None
    swing_high: Decimal | None = None
    swing_low: Decimal | None = None
    swing_key: str | None = None
    levels: tuple[LevelDiag, ...] = ()
    chosen_level: str | None = None
    entry_leverage: Decimal | None = None
    margin: Decimal | None = None
    notional_raw: Decimal | None = None
    caps: tuple[tuple[str, Decimal], ...] = ()
    binding_cap: str | None = None
    approved_notional: Decimal | None = None
    p_floor: Decimal | None = None
    liq_now: Decimal | None = None
    liq_distance: Decimal | None = None
    mmf: Decimal | None = None
    imf: Decimal | None = None


@attrs.frozen(kw_only=True)
class Decision:
    """The result of one call of ``decide`` (spec 1.3)."""

    intents: tuple[OrderIntent, ...]
    events: tuple[RiskEvent, ...]
    next_state: StrategyState
    diag: Diagnostics

    @property
    def buys(self) -> tuple[OrderIntent, ...]:
        """The BUY intents (at most one)."""
        return tuple(i for i in self.intents if i.side == "BUY")

    def codes(self, kind: str = "BLOCK") -> frozenset[str]:
        """Codes of the events of one kind."""
        return frozenset(e.code for e in self.events if e.kind == kind)


@attrs.frozen(kw_only=True)
class FillReport:
    """New fill quantity of one intent, built from exchange fills (spec 1.3, 5).

    Reports are incremental: ``filled_qty`` is quantity not reported before. ``side`` is SELL only for a
    deleverage intent, whose fills do not touch entry bookkeeping.
    """

    intent_id: str
    level: str
    swing_key: str
    filled_qty: Decimal
    avg_price: Decimal
    ts: datetime
    entry_leverage: Decimal
    side: str = "BUY"
