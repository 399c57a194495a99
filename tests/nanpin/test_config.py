"""Tests of the nanpin configuration classes: defaults, field validators, cross-field checks."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.nanpin.config import (
    Level,
    NanpinConfig,
    RiskConfig,
    SignalConfig,
    SizingConfig,
    SwingConfig,
    default_levels,
)


def test_defaults_match_spec_section_2() -> None:
    """Every default equals the value in spec section 2."""
    cfg = NanpinConfig()
    assert cfg.market.symbol == "BTC_USDC"
    assert cfg.market.market_type == "spot"
    assert cfg.data.min_history_bars == 80
    assert cfg.signal.min_drawdown_frac == 0.18
    assert cfg.signal.max_fear_greed == 35
    assert cfg.swing.lookback_bars_low_vol == 75
    assert [lv.name for lv in cfg.levels] == ["23.6", "38.2", "50.0", "61.8", "78.6"]
    assert [lv.size_mult for lv in cfg.levels] == [2, 3, 5, 8, 13]
    assert cfg.levels[4].window == (-0.150, -0.030)
    assert cfg.cooldown.rearm_guard_h == 168
    assert cfg.sizing.taker_fee_frac == Decimal("0.001")
    assert cfg.sizing.max_order_notional_usdc == Decimal(10000)
    assert cfg.risk.default_imf == Decimal("0.10")
    assert cfg.risk.liq_critical_distance_frac == Decimal("0.15")
    assert cfg.clusters.defer_min_notional_usd == Decimal(5000000)


def test_ratio_key_is_ratio_as_written() -> None:
    """level_last_fill_at keys are the ratio as written in [[levels]] (spec 9.15)."""
    assert [lv.ratio_key for lv in default_levels()] == ["0.236", "0.382", "0.5", "0.618", "0.786"]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SignalConfig(min_drawdown_frac=-18), "must be in [0, 1]; got -18"),
        (lambda: SignalConfig(min_drawdown_frac=18.0), "must be in [0, 1]; got 18.0"),
        (lambda: Level(name="x", ratio=0.5, window=(-3.0, -0.5)), "must lie inside (-1, 0)"),
        (lambda: Level(name="x", ratio=0.5, window=(-0.01, -0.03)), "must have lo < hi"),
        (lambda: Level(name="x", ratio=61.8), "must be in (0, 1); got 61.8"),
        (lambda: Level(name="x", ratio=0.5, size_mult=Decimal(0)), "must be in (0, inf]; got 0"),
        (lambda: RiskConfig(default_mmf=Decimal(1)), "must be in [0, 1); got 1"),
        (lambda: RiskConfig(default_imf=Decimal(0)), "must be in (0, 1]; got 0"),
        (lambda: RiskConfig(default_imf=Decimal(10)), "must be in (0, 1]; got 10"),
        (lambda: RiskConfig(liq_critical_distance_frac=Decimal("0.3")),
         "liq_critical_distance_frac must be < liq_warn_distance_frac"),
        (lambda: SizingConfig(max_slippage_frac=Decimal("0.5") * 3), "must be in [0, 1]; got 1.5"),
        (lambda: SwingConfig(min_range_frac=10.0), "must be in [0, 1]; got 10.0"),
        (lambda: SizingConfig(mode="kelly"), "must be one of ladder, legacy; got 'kelly'"),
    ],
)
def test_bad_values_rejected_with_precise_message(build: Callable[[], object], message: str) -> None:
    """Each field validator and cross-field check raises ValueError with a message naming the bound."""
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


def test_ratios_must_strictly_increase() -> None:
    """Level ratios out of order or repeated are rejected."""
    levels = default_levels()
    with pytest.raises(ValueError, match="strictly increasing"):
        NanpinConfig(levels=(levels[1], levels[0]))
    with pytest.raises(ValueError, match="strictly increasing"):
        NanpinConfig(levels=(levels[0], attrs.evolve(levels[0], name="dup")))
    with pytest.raises(ValueError, match="unique"):
        NanpinConfig(levels=(levels[0], attrs.evolve(levels[1], name=levels[0].name)))
    with pytest.raises(ValueError, match="at least one level"):
        NanpinConfig(levels=tuple(attrs.evolve(lv, enabled=False) for lv in levels))


@settings(max_examples=40, deadline=None)
@given(pct=st.floats(min_value=1.5, max_value=100.0), sign=st.sampled_from([-1.0, 1.0]))
def test_percent_numbers_rejected_where_fractions_expected(pct: float, sign: float) -> None:
    """Invariant 8: percent-sized numbers (e.g. -18, -3.0) fail every fraction key and window."""
    value = sign * pct
    with pytest.raises(ValueError, match="must"):
        SignalConfig(min_drawdown_frac=value)
    with pytest.raises(ValueError, match="must"):
        Level(name="x", ratio=0.5, window=(value, -0.001))
    with pytest.raises(ValueError, match="must"):
        RiskConfig(min_liq_distance_frac=Decimal(repr(value)))
