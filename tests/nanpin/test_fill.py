"""apply_fill bookkeeping (spec 5, 9.7, 9.11): identity on empty fills, counting, day roll, legacy margin."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs

from engine.nanpin import FillReport, StrategyState, apply_fill, decide
from engine.nanpin.config import SizingConfig
from tests.nanpin.scenarios import NOW, example_input, perp_cfg

FILL = FillReport(intent_id="nanpin:BTC_USDC_PERP:2025-03-02:78.6", level="78.6", swing_key="2025-03-02",
                  filled_qty=Decimal("0.1"), avg_price=Decimal(98000), ts=NOW, entry_leverage=Decimal(8))
STATE = StrategyState(swing_key="2025-03-02", day=NOW.date(), day_start_equity=Decimal(10000))


def test_zero_fill_is_identity() -> None:
    """An unfilled IOC (qty 0), a negative or NaN qty, and a SELL fill return the state itself."""
    cfg = perp_cfg()
    for qty in (Decimal(0), Decimal("-1"), Decimal("NaN")):
        assert apply_fill(STATE, attrs.evolve(FILL, filled_qty=qty), cfg) is STATE
    assert apply_fill(STATE, attrs.evolve(FILL, side="SELL"), cfg) is STATE


def test_fill_marks_level_counts_once_and_adds_notional() -> None:
    """Partial fills of one intent mark the level, count one entry and add each notional to the day."""
    cfg = perp_cfg()
    st = apply_fill(STATE, FILL, cfg)
    st = apply_fill(st, attrs.evolve(FILL, filled_qty=Decimal("0.05"), ts=NOW + timedelta(seconds=1)), cfg)
    assert st.filled_levels == {"78.6"}
    assert st.entries_total == 1
    assert st.day_bought_notional == Decimal("14700")
    assert st.last_entry_at == NOW + timedelta(seconds=1)
    assert st.level_last_fill_at == {"0.786": NOW + timedelta(seconds=1)}
    other = attrs.evolve(FILL, intent_id="nanpin:BTC_USDC_PERP:2025-03-02:61.8", level="61.8")
    st = apply_fill(st, other, cfg)
    assert st.entries_total == 2
    assert st.filled_levels == {"78.6", "61.8"}


def test_out_of_order_fill_never_moves_times_back() -> None:
    """9.7: last_entry_at is the max of fill times; an older fill does not move it backwards."""
    cfg = perp_cfg()
    st = apply_fill(STATE, FILL, cfg)
    st = apply_fill(st, attrs.evolve(FILL, intent_id="x", ts=NOW - timedelta(hours=5)), cfg)
    assert st.last_entry_at == NOW
    assert st.level_last_fill_at["0.786"] == NOW


def test_fill_under_other_swing_key_does_not_mark_level_but_arms_guard() -> None:
    """A fill for an older ladder adds no level to the current one, yet the re-arm guard records it."""
    cfg = perp_cfg()
    st = apply_fill(STATE, attrs.evolve(FILL, swing_key="2025-01-01"), cfg)
    assert st.filled_levels == frozenset()
    assert st.level_last_fill_at == {"0.786": NOW}
    assert st.entries_total == 1


def test_fill_day_rolls_forward_and_first_decision_sets_start_equity() -> None:
    """9.7: a fill on a later UTC day rolls `day`; that day's first decision then sets day_start_equity."""
    cfg = perp_cfg()
    yesterday = attrs.evolve(STATE, day=NOW.date() - timedelta(days=1), day_bought_notional=Decimal(500))
    st = apply_fill(yesterday, FILL, cfg)
    assert st.day == NOW.date()
    assert st.day_bought_notional == Decimal(9800)
    assert st.day_start_equity == 0
    d = decide(example_input(), st, cfg)
    assert d.next_state.day_start_equity == 10000
    assert d.next_state.day_bought_notional == Decimal(9800)
    late = apply_fill(STATE, attrs.evolve(FILL, ts=NOW - timedelta(days=1)), cfg)
    assert late.day_bought_notional == 0


def test_legacy_margin_deployed() -> None:
    """Legacy mode adds filled notional / entry leverage to legacy_margin_deployed."""
    cfg = perp_cfg(sizing=SizingConfig(mode="legacy"))
    st = apply_fill(STATE, FILL, cfg)
    assert st.legacy_margin_deployed == Decimal(9800) / 8
    assert apply_fill(STATE, FILL, perp_cfg()).legacy_margin_deployed == 0
