"""``apply_fill(state, fill, cfg) -> StrategyState``: entry bookkeeping from a fill (spec 5, 9.7, 9.11); pure.

Invariants:

* A report with no filled quantity (0, negative or not finite) returns ``state`` itself: the identity.
* A fill never removes a level from ``filled_levels``; it adds ``fill.level`` only when the fill belongs to
  the current ladder (``fill.swing_key == state.swing_key``). A partial fill counts as filled.
* ``last_entry_at`` and ``level_last_fill_at`` only move forward, so out-of-order fills cannot shorten a
  cooldown or the re-arm guard.
* ``entries_total`` counts each intent once however many fill reports it gets (``recent_fill_intents``
  remembers the last :data:`RECENT_INTENTS` intent ids with fills; entries are at most daily).
* The fill counts toward the daily cap of its own UTC day; a later day rolls ``day`` forward with the day's
  start equity left for the first decision of that day to set, and an earlier day is not counted.
* Fills of a deleverage SELL do not touch entry bookkeeping.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, localcontext

import attrs

from engine.nanpin.config import NanpinConfig
from engine.nanpin.decide import DECIMAL_CONTEXT, utc
from engine.nanpin.types import FillReport, StrategyState

__all__ = ["RECENT_INTENTS", "apply_fill"]

#: How many intent ids with fills are remembered for counting ``entries_total`` once per intent.
RECENT_INTENTS = 32

_ZERO = Decimal(0)


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or utc(b) > utc(a) else a


def apply_fill(state: StrategyState, fill: FillReport, cfg: NanpinConfig) -> StrategyState:
    """State after a fill of a BUY intent; the identity for an empty fill or a SELL fill."""
    qty = fill.filled_qty
    if not isinstance(qty, Decimal) or not qty.is_finite() or qty <= 0 or fill.side != "BUY":
        return state
    with localcontext(DECIMAL_CONTEXT):
        ts = utc(fill.ts)
        price = fill.avg_price
        # A report without a usable price still marks the level and starts the cooldown (the conservative
        # part); only the notional bookkeeping cannot be done.
        notional = qty * price if price.is_finite() and price > 0 else _ZERO

        st = attrs.evolve(state, last_entry_at=_later(state.last_entry_at, ts))
        if fill.intent_id not in state.recent_fill_intents:
            st = attrs.evolve(st, entries_total=st.entries_total + 1,
                              recent_fill_intents=(*state.recent_fill_intents, fill.intent_id)[-RECENT_INTENTS:])

        fill_day = ts.date()
        if st.day is None or fill_day > st.day:
            st = attrs.evolve(st, day=fill_day, day_start_equity=_ZERO, day_bought_notional=notional,
                              day_delever_count=0)
        elif fill_day == st.day:
            st = attrs.evolve(st, day_bought_notional=st.day_bought_notional + notional)

        if fill.swing_key == state.swing_key:
            st = attrs.evolve(st, filled_levels=st.filled_levels | {fill.level})

        level = next((lv for lv in cfg.levels if lv.name == fill.level), None)
        if level is not None:
            stamps = dict(st.level_last_fill_at)
            stamps[level.ratio_key] = _later(stamps.get(level.ratio_key), ts)
            st = attrs.evolve(st, level_last_fill_at=stamps)

        if cfg.sizing.mode == "legacy":
            lev = fill.entry_leverage
            # An unusable leverage counts the full notional as margin: over-counting stops the budget early.
            divisor = lev if lev.is_finite() and lev > 0 else Decimal(1)
            st = attrs.evolve(st, legacy_margin_deployed=st.legacy_margin_deployed + notional / divisor)
        return st
