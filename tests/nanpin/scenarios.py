"""Builders for the worked examples of nanpin-strategy.md section 6 (shared by the nanpin tests).

The bars reproduce the examples' swing: the 60-bar high 120 000 printed 20 bars before the last closed bar
(which starts 2025-03-02, so the swing key is "2025-03-02"), the swing low 98 000 ten bars back, and the last
eleven closes alternating around 106 739.13 so that momentum at P = 98 200 is -8.0 % and the volatility
regime is the one asked for.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from engine.nanpin import (
    Account,
    Bar,
    DecisionInput,
    MarketRules,
    NanpinConfig,
    Position,
    PriceObs,
)
from engine.nanpin.config import MarketConfig, RiskConfig, SelectionConfig

__all__ = [
    "AMPLITUDE",
    "KEY_DATE",
    "NOW",
    "PERP_RULES",
    "example_bars",
    "example_input",
    "perp_cfg",
    "spot_cfg",
]

KEY_DATE = date(2025, 3, 2)
N_BARS = 80
# Alternating close amplitude giving each volatility regime (annualised ~94 %, ~47 %, ~15 %).
AMPLITUDE = {"high": Decimal("0.05"), "mid": Decimal("0.025"), "low": Decimal("0.008")}
MOM_REF = Decimal("106739.13")
FIRST = datetime(KEY_DATE.year, KEY_DATE.month, KEY_DATE.day, tzinfo=UTC) - timedelta(days=N_BARS - 20)
NOW = FIRST + timedelta(days=N_BARS, hours=6)
PERP_RULES = MarketRules(step_size=Decimal("0.00001"), tick_size=Decimal("0.1"), min_qty=Decimal("0.00001"),
                         min_notional=Decimal(0))


def example_bars(regime: str = "high") -> tuple[Bar, ...]:
    """80 closed daily bars shaped as the section 6 setup."""
    amp = AMPLITUDE[regime]
    closes = [Decimal(105000)] * N_BARS
    for i in range(N_BARS - 11, N_BARS):
        odd = (i - (N_BARS - 3)) % 2 != 0
        closes[i] = (MOM_REF * (1 + amp)).quantize(Decimal("0.01")) if odd else MOM_REF
    bars = []
    prev = closes[0]
    for i, c in enumerate(closes):
        high = (max(prev, c) * Decimal("1.001")).quantize(Decimal("0.01"))
        low = (min(prev, c) * Decimal("0.999")).quantize(Decimal("0.01"))
        if i == N_BARS - 20:
            high = Decimal(120000)
        if i == N_BARS - 10:
            low = Decimal(98000)
        bars.append(Bar(start=FIRST + timedelta(days=i), open=prev, high=high, low=low, close=c,
                        volume=Decimal(1000)))
        prev = c
    return tuple(bars)


def perp_cfg(**sections: Any) -> NanpinConfig:
    """The examples' perp profile: confluence off, default_mmf 0.005, everything else default."""
    base = NanpinConfig(
        market=MarketConfig(symbol="BTC_USDC_PERP", market_type="perp"),
        selection=SelectionConfig(confluence_enabled=False),
        risk=RiskConfig(default_mmf=Decimal("0.005")),
    )
    return attrs.evolve(base, **sections)


def spot_cfg() -> NanpinConfig:
    """The shipped spot default with confluence off (as the examples)."""
    return NanpinConfig(selection=SelectionConfig(confluence_enabled=False))


def example_input(price: Decimal | str | int = "98200", *, regime: str = "high", equity: Decimal | int = 10000,
                  available: Decimal | int | None = None, qty: Decimal | str = "0", avg: Decimal | int = 0,
                  now: datetime = NOW, bars: tuple[Bar, ...] | None = None,
                  est_liq: Decimal | None = None) -> DecisionInput:
    """DecisionInput of the examples (flat account of 10 000 USDC unless told otherwise)."""
    eq = Decimal(equity)
    return DecisionInput(
        now=now,
        bars=bars if bars is not None else example_bars(regime),
        price=PriceObs(value=Decimal(price), ts=now - timedelta(seconds=1)),
        account=Account(equity=eq, available=Decimal(available) if available is not None else eq),
        position=Position(qty=Decimal(qty), avg_entry=Decimal(avg), mmf=Decimal("0.005"),
                          est_liq_price=est_liq),
        rules=PERP_RULES,
    )
