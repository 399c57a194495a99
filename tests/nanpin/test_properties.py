"""Section 7 invariants of nanpin-strategy.md as Hypothesis properties over the section 6 market."""

from __future__ import annotations

import zlib
from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.nanpin import (
    Account,
    Bar,
    Decision,
    DecisionInput,
    FearGreed,
    FillReport,
    NanpinConfig,
    Position,
    PriceObs,
    StrategyState,
    apply_fill,
    decide,
)
from engine.nanpin.config import (
    MarketConfig,
    RiskConfig,
    SelectionConfig,
    SignalConfig,
    SizingConfig,
    default_levels,
)
from engine.nanpin.levels import level_price
from tests.nanpin.scenarios import NOW, PERP_RULES, example_bars

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STEP = PERP_RULES.step_size
TICK = PERP_RULES.tick_size


@cache
def _bars(regime: str) -> tuple[Bar, ...]:
    return example_bars(regime)


@cache
def _cfg(perp: bool, sizing: str, selection: str, confluence: bool, delever: bool) -> NanpinConfig:
    return NanpinConfig(
        market=MarketConfig(symbol="BTC_USDC_PERP" if perp else "BTC_USDC", market_type="perp" if perp else "spot"),
        selection=SelectionConfig(mode=selection, confluence_enabled=confluence),
        sizing=SizingConfig(mode=sizing),
        risk=RiskConfig(default_mmf=Decimal("0.005"), deleverage_on_critical=delever),
    )


def _dec(lo: int, hi: int, scale: int) -> st.SearchStrategy[Decimal]:
    return st.integers(lo, hi).map(lambda x: Decimal(x) / scale)


@st.composite
def scenarios(draw: st.DrawFn, *, est_liq: bool = True) -> tuple[DecisionInput, NanpinConfig]:
    perp = draw(st.booleans())
    cfg = _cfg(perp, draw(st.sampled_from(["ladder", "legacy"])), draw(st.sampled_from(["score", "deepest"])),
               draw(st.booleans()), draw(st.booleans()))
    # Mostly inside the entry region of this swing (P <= 98 400), sometimes anywhere around it.
    price = draw(_dec(980_000, 984_000, 10) | _dec(940_000, 1_260_000, 10))
    qty = draw(st.just(Decimal(0)) | _dec(0, 200_000, 100_000))
    avg = draw(_dec(60_000, 130_000, 1)) if qty > 0 else Decimal(0)
    cash = draw(_dec(0, 2_000_000, 10))
    if perp:
        equity = draw(_dec(100, 100_000, 1))
        available = draw(_dec(0, 100, 100)) * equity
    else:
        # Spot equity is quote balance plus the holding at P (spec 9.13 d).
        available = cash
        equity = cash + draw(_dec(0, 100_000, 1)) + qty * price
    est = draw(st.none() | _dec(0, 1_000_000, 10)) if est_liq and perp and qty > 0 else None
    inp = DecisionInput(
        now=NOW,
        bars=_bars(draw(st.sampled_from(["high", "mid", "low"]))),
        price=PriceObs(value=price, ts=NOW - timedelta(seconds=1)),
        account=Account(equity=equity, available=available),
        position=Position(qty=qty, avg_entry=avg, mmf=Decimal("0.005"), est_liq_price=est),
        rules=PERP_RULES,
    )
    return inp, cfg


def _approved(d: Decision) -> Decimal:
    return sum((i.notional for i in d.buys), Decimal(0))


@FAST
@given(scenarios())
def test_determinism_and_stable_client_id(sc: tuple[DecisionInput, NanpinConfig]) -> None:
    """Invariant 1: identical inputs give identical decisions; client_id is CRC-32 of intent_id."""
    inp, cfg = sc
    a = decide(inp, StrategyState(), cfg)
    b = decide(inp, StrategyState(), cfg)
    assert a == b
    for i in a.intents:
        assert i.client_id == zlib.crc32(i.intent_id.encode())


@FAST
@given(scenarios())
def test_every_buy_respects_every_cap(sc: tuple[DecisionInput, NanpinConfig]) -> None:
    """Invariants 2, 3: at most one BUY; each respects the caps, leverage, liq floor, step and tick."""
    inp, cfg = sc
    d = decide(inp, StrategyState(), cfg)
    assert len(d.buys) <= 1
    sells = [i for i in d.intents if i.side == "SELL"]
    if sells:
        assert cfg.risk.deleverage_on_critical
        assert "LIQ_CRITICAL" in d.codes("HALT")
        assert all(s.reduce_only and s.qty <= inp.position.qty for s in sells)
    for buy in d.buys:
        p, e, q = inp.price.value, inp.account.equity, inp.position.qty  # type: ignore[union-attr]
        assert not d.codes("BLOCK")
        assert not d.codes("HALT")
        assert buy.qty > 0
        assert buy.qty % STEP == 0
        assert buy.limit_price % TICK == 0
        assert buy.limit_price >= p
        n = buy.qty * p
        assert n == buy.notional
        for _name, cap in d.diag.caps:
            assert n <= cap
        assert n <= min(Decimal(10000), e)
        assert n >= Decimal(10)
        if cfg.is_perp:
            assert buy.projected.account_leverage <= cfg.risk.max_account_leverage
            assert (q + buy.qty) * p <= 3 * e
            assert n <= inp.account.available * Decimal("0.8") / Decimal("0.10")
            assert d.diag.p_floor is not None
            assert buy.projected.liq_price is not None
            assert buy.projected.liq_price <= max(d.diag.p_floor, Decimal(0))
            assert d.diag.swing_low is not None
            assert d.diag.p_floor <= min(p * Decimal("0.7"), d.diag.swing_low * Decimal("0.85"))
        else:
            assert buy.qty * buy.limit_price * Decimal("1.001") <= inp.account.available * Decimal("0.8")
            assert buy.entry_leverage == 1


@FAST
@given(scenarios(), st.sampled_from(["halted", "filled", "cooldown", "drawdown", "fear"]))
def test_no_buy_under_blocking_conditions(sc: tuple[DecisionInput, NanpinConfig], why: str) -> None:
    """Invariant 4: no BUY when halted, in cooldown, drawdown too shallow, fear too high, or level filled."""
    inp, cfg = sc
    first = decide(inp, StrategyState(), cfg)
    state = StrategyState()
    if why == "halted":
        state = StrategyState(halted=True, halt_reason="test")
    elif why == "filled":
        if not first.buys:
            return
        level = first.buys[0].level
        state = attrs.evolve(first.next_state, filled_levels=frozenset({level}))
        d = decide(inp, state, cfg)
        assert all(b.level != level for b in d.buys)
        return
    elif why == "cooldown":
        state = StrategyState(last_entry_at=NOW - timedelta(hours=23))
    elif why == "drawdown":
        inp = attrs.evolve(inp, price=PriceObs(value=Decimal("98400.1"), ts=inp.now))
    else:
        cfg = attrs.evolve(cfg, signal=SignalConfig(fear_greed_source="external"))
        inp = attrs.evolve(inp, fear_greed=FearGreed(value=35.01, ts=NOW))
    d = decide(inp, state, cfg)
    assert d.buys == ()
    assert d.codes()


@FAST
@given(high=_dec(1, 10**9, 100), frac=_dec(0, 1000, 1000))
def test_levels_monotone_inside_range(high: Decimal, frac: Decimal) -> None:
    """Invariant 5: level prices strictly decrease with the ratio and stay in [L, H]; windows in (-1, 0)."""
    low = high * (1 - frac)
    prices = [level_price(high, low, lv.ratio) for lv in default_levels()]
    for lv in default_levels():
        assert -1 < lv.window[0] < lv.window[1] < 0
    for x in prices:
        assert low <= x <= high
    if high > low:
        assert all(a > b for a, b in zip(prices, prices[1:], strict=False))


@FAST
@given(scenarios(est_liq=False), _dec(1, 100_000, 1))
def test_approved_notional_monotone_in_equity(sc: tuple[DecisionInput, NanpinConfig], extra: Decimal) -> None:
    """Invariant 6: raising E (all else fixed, no exchange liq estimate) never lowers the approved notional."""
    inp, cfg = sc
    richer = attrs.evolve(inp, account=attrs.evolve(inp.account, equity=inp.account.equity + extra))
    assert _approved(decide(richer, StrategyState(), cfg)) >= _approved(decide(inp, StrategyState(), cfg))


@FAST
@given(scenarios(est_liq=False), _dec(1, 100_000, 100_000))
def test_approved_notional_monotone_in_position(sc: tuple[DecisionInput, NanpinConfig], extra: Decimal) -> None:
    """Invariant 6: raising Q at the same avg entry above P never raises the approved notional."""
    inp, cfg = sc
    p = inp.price.value  # type: ignore[union-attr]
    avg = max(inp.position.avg_entry, p + 1)
    base = attrs.evolve(inp, position=attrs.evolve(inp.position, avg_entry=avg))
    more = attrs.evolve(base, position=attrs.evolve(base.position, qty=base.position.qty + extra))
    assert _approved(decide(more, StrategyState(), cfg)) <= _approved(decide(base, StrategyState(), cfg))


@FAST
@given(scenarios(), st.sampled_from(["0", "0.00001", "0.3"]), st.integers(-48, 48))
def test_apply_fill_identity_and_monotone_levels(sc: tuple[DecisionInput, NanpinConfig], qty: str,
                                                 hours: int) -> None:
    """Invariant 7: a zero fill is the identity; a fill never removes a level; counters never decrease."""
    inp, cfg = sc
    d = decide(inp, StrategyState(), cfg)
    state = attrs.evolve(d.next_state, filled_levels=frozenset({"23.6"}), entries_total=3)
    fill = FillReport(intent_id="nanpin:x", level="50.0", swing_key=state.swing_key or "k",
                      filled_qty=Decimal(qty), avg_price=Decimal(98000), ts=NOW + timedelta(hours=hours),
                      entry_leverage=Decimal(2))
    after = apply_fill(state, fill, cfg)
    if Decimal(qty) == 0:
        assert after is state
        return
    assert state.filled_levels <= after.filled_levels
    assert after.entries_total == 4
    assert after.last_entry_at is not None
    assert after.legacy_margin_deployed >= state.legacy_margin_deployed


@FAST
@given(scenarios(), st.sampled_from(["1999-01-01", "2025-03-02", None]))
def test_swing_key_change_empties_filled_levels(sc: tuple[DecisionInput, NanpinConfig], key: str | None) -> None:
    """Invariant 7: a changed swing_key in next_state comes with empty filled_levels."""
    inp, cfg = sc
    state = StrategyState(swing_key=key, filled_levels=frozenset({"61.8", "78.6"}))
    d = decide(inp, state, cfg)
    if d.next_state.swing_key != key:
        assert d.next_state.filled_levels == frozenset()
    else:
        assert d.next_state.filled_levels == state.filled_levels


_WEIRD = st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal(0), Decimal(-1),
                          Decimal("1e-30"), Decimal("1e30"), Decimal(98200), Decimal("sNaN")])


@FAST
@given(scenarios(), st.lists(st.tuples(st.sampled_from(["price", "equity", "available", "qty", "avg", "est",
                                                         "mmf", "imf", "step", "tick", "bar_close",
                                                         "bar_low"]), _WEIRD), max_size=3))
def test_decide_is_total_on_bad_data(sc: tuple[DecisionInput, NanpinConfig],
                                     mutations: list[tuple[str, Decimal]]) -> None:
    """decide never raises on bad market data (NaN, infinities, zeros, negatives); it reports BLOCKs."""
    inp, cfg = sc
    changes: dict[str, Any] = {}
    for field, value in mutations:
        if field == "price":
            inp = attrs.evolve(inp, price=PriceObs(value=value, ts=inp.now))
        elif field in ("equity", "available", "imf"):
            inp = attrs.evolve(inp, account=attrs.evolve(inp.account, **{field: value}))
        elif field in ("qty", "mmf"):
            inp = attrs.evolve(inp, position=attrs.evolve(inp.position, **{field: value}))
        elif field == "avg":
            inp = attrs.evolve(inp, position=attrs.evolve(inp.position, avg_entry=value))
        elif field == "est":
            inp = attrs.evolve(inp, position=attrs.evolve(inp.position, est_liq_price=value))
        elif field in ("step", "tick"):
            inp = attrs.evolve(inp, rules=attrs.evolve(inp.rules, **{f"{field}_size": value}))
        else:
            bars = list(inp.bars)
            bar = bars[-5]
            bars[-5] = attrs.evolve(bar, close=value) if field == "bar_close" else attrs.evolve(bar, low=value)
            inp = attrs.evolve(inp, bars=tuple(bars))
        changes[field] = value
    d = decide(inp, StrategyState(), cfg)
    assert len(d.buys) <= 1
    if changes and d.buys:
        # Whatever was changed must still be a usable value for a BUY to be emitted.
        assert all(v.is_finite() for v in changes.values())
