"""The worked examples of nanpin-strategy.md section 6, with the spec's figures."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs
import pytest

from engine.errors import InvariantViolation
from engine.nanpin import FillReport, StrategyState, apply_fill, attempt_client_id, decide
from engine.nanpin.config import Level, MarketConfig, SizingConfig, default_levels
from engine.nanpin.indicators import fear_proxy
from engine.nanpin.levels import band, entry_leverage, level_price, score
from engine.nanpin.sizing import liq_price, liq_qty_cap
from tests.nanpin.scenarios import NOW, example_input, perp_cfg, spot_cfg

H = Decimal(120000)
L = Decimal(98000)


def _level(name: str) -> Level:
    return next(lv for lv in default_levels() if lv.name == name)


def _caps(decision: object) -> dict[str, Decimal]:
    return dict(decision.diag.caps)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "price", "lo", "hi"),
    [
        ("23.6", "114808.00", "111363.76", "114233.96"),
        ("38.2", "111596.00", "106016.20", "110480.04"),
        ("50.0", "109000.00", "101370.00", "107365.00"),
        ("61.8", "106404.00", "95763.60", "104275.92"),
        ("78.6", "102708.00", "87301.80", "99626.76"),
    ],
)
def test_6_1_level_prices_and_bands(name: str, price: str, lo: str, hi: str) -> None:
    """6.1: level prices and their in-window price bands are exactly the table's."""
    lv = _level(name)
    x = level_price(H, L, lv.ratio)
    assert x == Decimal(price)
    assert band(lv, x) == (Decimal(lo), Decimal(hi))
    d = decide(example_input("98200"), StrategyState(), perp_cfg())
    got = next(ld for ld in d.diag.levels if ld.name == name)
    assert (got.price, got.band_lo, got.band_hi) == (Decimal(price), Decimal(lo), Decimal(hi))


def test_6_1_band_edges_are_inclusive() -> None:
    """6.1: a price exactly on a band edge is in window (61.8 at 95 763.60 and 104 275.92)."""
    from engine.nanpin.levels import in_window, level_distance

    lv = _level("61.8")
    x = level_price(H, L, lv.ratio)
    assert in_window(lv, level_distance(Decimal("95763.60"), x))
    assert in_window(lv, level_distance(Decimal("104275.92"), x))
    assert not in_window(lv, level_distance(Decimal("104275.93"), x))


def test_6_2_drawdown_gate_is_the_only_block_at_105000() -> None:
    """6.2: at P = 105 000 the 50.0 level is in window but BLOCK DRAWDOWN is the only event."""
    d = decide(example_input("105000"), StrategyState(), perp_cfg())
    assert d.intents == ()
    assert [(e.kind, e.code) for e in d.events] == [("BLOCK", "DRAWDOWN")]
    assert d.diag.drawdown == pytest.approx(-0.125)
    dists = {ld.name: (round(ld.dist * 100, 2), ld.in_window) for ld in d.diag.levels}
    assert dists == {"23.6": (-8.54, False), "38.2": (-5.91, False), "50.0": (-3.67, True),
                     "61.8": (-1.32, False), "78.6": (2.23, False)}
    assert fear_proxy(perp_cfg().signal, -0.125, -8.0, 80.0) == pytest.approx(26.05)


def test_6_2_blocked_at_99000_and_entries_only_up_to_98400() -> None:
    """6.2: P = 99 000 is blocked (drawdown -17.5 %) with 61.8 and 78.6 in window; 98 400 passes the gate."""
    d = decide(example_input("99000"), StrategyState(), perp_cfg())
    assert d.codes() == {"DRAWDOWN"}
    assert d.buys == ()
    inw = {ld.name: round(ld.dist * 100, 2) for ld in d.diag.levels if ld.in_window}
    assert inw == {"61.8": -6.96, "78.6": -3.61}
    assert decide(example_input("98400"), StrategyState(), perp_cfg()).buys
    assert decide(example_input("98400.1"), StrategyState(), perp_cfg()).codes() == {"DRAWDOWN"}


def test_6_3_indicator_pieces_with_injected_values() -> None:
    """6.3: fg 22.083, leverage 6.910 / 8.292, scores 581.08 / 645.04 from the example's indicator values."""
    cfg = perp_cfg()
    dd = (98200 - 120000) / 120000
    fg = fear_proxy(cfg.signal, dd, -8.0, 80.0)
    assert fg == pytest.approx(22.083, abs=1e-3)
    lev618 = entry_leverage(cfg, _level("61.8"), dd, fg)
    lev786 = entry_leverage(cfg, _level("78.6"), dd, fg)
    assert lev618 == pytest.approx(6.910, abs=1e-3)
    assert lev786 == pytest.approx(8.292, abs=1e-3)
    assert score(_level("61.8"), lev618, 1.0, -0.07710, dd) == pytest.approx(581.08, abs=0.1)
    assert score(_level("78.6"), lev786, 1.0, -0.04389, dd) == pytest.approx(645.04, abs=0.1)
    margin = Decimal(10000) * Decimal("0.5") / 31 * 13
    assert margin.quantize(Decimal("0.01")) == Decimal("2096.77")
    assert (margin * Decimal(repr(lev786))).quantize(Decimal("0.01")) == pytest.approx(Decimal("17386.45"),
                                                                                        abs=Decimal("1"))


def test_6_3_full_intent_end_to_end() -> None:
    """6.3: BUY 0.10183 BTC_USDC_PERP limit_ioc at 98 691, level 78.6, client id 261067056, per-order cap."""
    d = decide(example_input("98200"), StrategyState(), perp_cfg())
    assert d.events == ()
    assert d.diag.drawdown == pytest.approx(-0.181667, abs=1e-6)
    assert d.diag.days_since_ath == 20
    assert d.diag.regime == "high"
    assert d.diag.cooldown_h == 24
    assert d.diag.mom_pct == pytest.approx(-8.0, abs=1e-5)
    (buy,) = d.intents
    assert buy.side == "BUY"
    assert not buy.reduce_only
    assert buy.symbol == "BTC_USDC_PERP"
    assert buy.order_type == "limit_ioc"
    assert buy.level == "78.6"
    assert buy.qty == Decimal("0.10183")
    assert buy.notional == Decimal("9999.706")
    assert buy.limit_price == Decimal("98691")
    assert buy.ref_price == Decimal(98200)
    assert buy.intent_id == "nanpin:BTC_USDC_PERP:2025-03-02:78.6"
    assert buy.client_id == 261067056
    assert buy.projected.account_leverage.quantize(Decimal("0.01")) == Decimal("1.00")
    assert buy.projected.liq_price == 0
    assert d.diag.binding_cap == "per_order"
    assert d.diag.margin is not None
    assert d.diag.margin.quantize(Decimal("0.01")) == Decimal("2096.77")
    caps = _caps(d)
    assert caps["per_order"] == 10000
    assert caps["daily"] == 10000
    assert caps["account_leverage"] == 30000
    assert caps["margin"] == 80000
    assert caps["liquidation"] > 10000
    # 9.8: worst-case cost exceeds the cap by at most the slippage allowance
    assert buy.qty * buy.limit_price == pytest.approx(Decimal("10049.7"), abs=Decimal("0.1"))
    # the state is not marked filled by decide
    assert d.next_state.filled_levels == frozenset()
    assert d.next_state.swing_key == "2025-03-02"
    assert d.next_state.day_start_equity == 10000


def test_6_3_attempt_client_ids() -> None:
    """9.9: attempt 0 uses the intent id, retry n appends #n, each with its own CRC-32."""
    iid = "nanpin:BTC_USDC_PERP:2025-03-02:78.6"
    assert attempt_client_id(iid, 0) == (iid, 261067056)
    a1, c1 = attempt_client_id(iid, 1)
    assert a1 == iid + "#1"
    assert c1 != 261067056
    assert 0 <= c1 < 2**32
    with pytest.raises(InvariantViolation, match="must be >= 0"):
        attempt_client_id(iid, -1)


def test_6_3_legacy_mode_capped_to_10000() -> None:
    """6.3 legacy: min(0.2 x 10 000, 12 000) x lev is capped to 10 000 by the per-order cap."""
    cfg = perp_cfg(sizing=SizingConfig(mode="legacy"))
    d = decide(example_input("98200"), StrategyState(), cfg)
    assert d.diag.margin == Decimal(2000)
    assert d.next_state.legacy_budget_base == 10000
    assert d.diag.binding_cap == "per_order"
    assert d.intents[0].qty == Decimal("0.10183")


def test_6_3_spot_chooses_61_8() -> None:
    """9.13(f): on 6.3's inputs the spot profile (leverage 1) chooses 61.8 rather than 78.6."""
    cfg = attrs.evolve(spot_cfg(), market=MarketConfig(symbol="BTC_USDC", market_type="spot"))
    d = decide(example_input("98200"), StrategyState(), cfg)
    (buy,) = d.intents
    assert buy.level == "61.8"
    assert buy.entry_leverage == 1
    assert buy.intent_id == "nanpin:BTC_USDC:2025-03-02:61.8"
    # ladder margin 8 x 161.29 = 1 290.32 is the size; the cash cap (8 000) does not bind
    assert d.diag.binding_cap is None
    assert buy.qty == Decimal("0.01313")
    assert buy.projected.liq_price is None
    assert set(_caps(d)) == {"per_order", "daily", "cash"}


def test_6_4_account_leverage_cap_binds() -> None:
    """6.4: with Q = 0.25 @ 104 000 the account-leverage cap (5 450) binds: qty 0.05549."""
    inp = example_input("98200", available=7545, qty="0.25", avg=104000)
    d = decide(inp, StrategyState(), perp_cfg())
    assert d.events == ()
    assert d.diag.liq_distance is not None
    assert d.diag.liq_distance.quantize(Decimal("0.001")) == Decimal("0.404")
    assert d.diag.liq_now is not None
    assert round(d.diag.liq_now) == 58492
    caps = _caps(d)
    assert caps["account_leverage"] == Decimal("5450")
    assert caps["margin"] == Decimal("60360")
    assert caps["liquidation"] == pytest.approx(Decimal("8398.93"), abs=Decimal("0.5"))
    assert d.diag.p_floor == Decimal("68740")
    assert d.diag.binding_cap == "account_leverage"
    (buy,) = d.intents
    assert buy.qty == Decimal("0.05549")
    assert buy.notional == Decimal("5449.118")
    assert buy.projected.account_leverage == pytest.approx(Decimal("2.9999"), abs=Decimal("0.0001"))
    assert buy.projected.liq_price is not None
    assert round(buy.projected.liq_price) == 65795
    assert buy.projected.liq_distance is not None
    assert buy.projected.liq_distance.quantize(Decimal("0.001")) == Decimal("0.330")


def test_6_4_full_buy_would_break_liquidation_and_leverage() -> None:
    """6.4: buying the full 10 000 would put liq at 70 128 (28.6 %) and leverage at 3.455."""
    collateral = Decimal(10000) - Decimal("0.25") * (Decimal(98200) - Decimal(104000))
    assert collateral == 11450
    q = Decimal("0.10183")
    p = liq_price(Decimal("0.25") + q, Decimal(26000) + q * 98200, collateral, Decimal("0.005"))
    assert round(p) == 70128
    assert (Decimal(98200) - p) / 98200 < Decimal("0.30")
    qcap = liq_qty_cap(Decimal(98200), Decimal("0.25"), Decimal(104000), collateral, Decimal("0.005"),
                       Decimal(68740))
    assert qcap is not None
    assert qcap.quantize(Decimal("0.00001")) == Decimal("0.08553")


@pytest.mark.parametrize(
    ("regime", "codes"),
    [("high", set()), ("mid", {"COOLDOWN"}), ("low", {"COOLDOWN", "FEAR"})],
)
def test_6_5_cooldown_by_volatility_regime(regime: str, codes: set[str]) -> None:
    """6.5: last fill 30 h ago passes the 24 h high-vol cooldown, not the 48 h / 72 h ones."""
    state = StrategyState(last_entry_at=NOW - timedelta(hours=30))
    d = decide(example_input("98200", regime=regime), state, perp_cfg())
    assert d.diag.regime == regime
    assert d.diag.cooldown_h == {"high": 24, "mid": 48, "low": 72}[regime]
    assert d.codes() == codes
    assert bool(d.buys) == (not codes)


def test_6_5_after_the_78_6_fill_the_next_buy_is_61_8() -> None:
    """6.5: after the 78.6 fill, once the cooldown is over, 61.8 is bought and 78.6 never again in the ladder."""
    cfg = perp_cfg()
    d = decide(example_input("98200"), StrategyState(), cfg)
    buy = d.intents[0]
    fill = FillReport(intent_id=buy.intent_id, level=buy.level, swing_key=buy.swing_key, filled_qty=buy.qty,
                      avg_price=Decimal(98200), ts=NOW, entry_leverage=buy.entry_leverage)
    st = apply_fill(d.next_state, fill, cfg)
    assert st.filled_levels == {"78.6"}
    assert st.entries_total == 1
    assert st.day_bought_notional == Decimal("9999.706")
    assert st.level_last_fill_at == {"0.786": NOW}
    soon = decide(example_input("98200", now=NOW + timedelta(hours=23), qty=buy.qty, avg=98200), st, cfg)
    assert "COOLDOWN" in soon.codes()
    later_now = NOW + timedelta(hours=25)
    later = decide(example_input("98200", now=later_now, qty=buy.qty, avg=98200), st, cfg)
    assert later.codes() == set()
    assert [i.level for i in later.intents] == ["61.8"]
    assert later.diag.levels[4].skip == "filled in this ladder"
    # with 61.8 filled too, nothing in window is left
    st2 = apply_fill(later.next_state, attrs.evolve(fill, level="61.8", intent_id=later.intents[0].intent_id,
                                                    ts=later_now), cfg)
    last = decide(example_input("98200", now=later_now + timedelta(hours=1)), st2, cfg)
    assert last.codes() == {"COOLDOWN", "NO_LEVEL_IN_WINDOW"}
    assert last.intents == ()
