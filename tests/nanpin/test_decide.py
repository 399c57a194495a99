"""Edge cases of decide(): input checks, risk monitor, re-arm guard, deleverage, sizing blocks (spec 3, 4, 9)."""

from __future__ import annotations

import ast
import pathlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from engine.nanpin import (
    Account,
    Bar,
    FearGreed,
    LiqCluster,
    Position,
    PriceObs,
    StrategyState,
    decide,
)
from engine.nanpin.config import (
    ClustersConfig,
    CooldownConfig,
    DataConfig,
    RiskConfig,
    SignalConfig,
    SizingConfig,
    SwingConfig,
)
from tests.nanpin.scenarios import NOW, example_bars, example_input, perp_cfg, spot_cfg


def test_pure_modules_import_no_io_libraries() -> None:
    """engine/nanpin never imports trio, httpx, time or datetime.now-style clocks."""
    root = pathlib.Path(__file__).resolve().parents[2] / "engine" / "nanpin"
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] in {"trio", "httpx", "time", "asyncio"} for n in names), path
        text = path.read_text()
        assert ".now(" not in text
        assert "utcnow" not in text
        assert "today()" not in text


def test_price_missing_stale_or_nonpositive_blocks() -> None:
    """PRICE_STALE for a missing price, an old one and a non-positive one; no indicators without a price."""
    base = example_input()
    cfg = perp_cfg()
    for price in (None, PriceObs(value=Decimal(98200), ts=NOW - timedelta(seconds=16)),
                  PriceObs(value=Decimal(0), ts=NOW), PriceObs(value=Decimal("NaN"), ts=NOW)):
        d = decide(attrs.evolve(base, price=price), StrategyState(), cfg)
        assert "PRICE_STALE" in d.codes()
        assert d.intents == ()
        assert d.diag.drawdown is None


def test_bar_checks() -> None:
    """BARS_STALE (none or old), BARS_INVALID (unaligned, unclosed, bad OHLC), BARS_GAP, HISTORY_SHORT."""
    bars = example_bars()
    base = example_input()
    cfg = perp_cfg()

    def codes(new_bars: tuple[Bar, ...], now: datetime = NOW) -> frozenset[str]:
        inp = attrs.evolve(base, bars=new_bars, now=now, price=PriceObs(value=Decimal(98200), ts=now))
        d = decide(inp, StrategyState(), cfg)
        assert d.intents == ()
        return d.codes()

    assert "BARS_STALE" in codes(())
    assert "BARS_STALE" in codes(bars, NOW + timedelta(hours=31))
    shifted = (*bars[:-1], attrs.evolve(bars[-1], start=bars[-1].start + timedelta(hours=1)))
    assert "BARS_INVALID" in codes(shifted)
    assert "BARS_INVALID" in codes(bars, bars[-1].start + timedelta(hours=23))
    assert "BARS_INVALID" in codes((*bars[:-1], attrs.evolve(bars[-1], high=bars[-1].low - 1)))
    assert "BARS_INVALID" in codes((*bars[:-1], attrs.evolve(bars[-1], close=Decimal("NaN"))))
    assert "BARS_GAP" in codes((*bars[:40], *bars[41:]))
    assert "BARS_GAP" in codes((*bars[:-2], bars[-1], bars[-2]))
    assert "HISTORY_SHORT" in codes(bars[-79:])


def test_failed_input_checks_never_move_the_ladder() -> None:
    """A decision with a failing input check keeps swing_key and filled_levels (stale bars cannot re-arm)."""
    state = StrategyState(swing_key="2024-01-01", filled_levels=frozenset({"78.6"}))
    d = decide(example_input(now=NOW + timedelta(hours=31)), state, perp_cfg())
    assert "BARS_STALE" in d.codes()
    assert d.next_state.swing_key == "2024-01-01"
    assert d.next_state.filled_levels == {"78.6"}


def test_swing_key_change_empties_filled_levels() -> None:
    """A new swing key resets filled_levels; the same key keeps them."""
    state = StrategyState(swing_key="2024-01-01", filled_levels=frozenset({"78.6"}))
    d = decide(example_input(), state, perp_cfg())
    assert d.next_state.swing_key == "2025-03-02"
    assert d.next_state.filled_levels == frozenset()
    assert d.intents[0].level == "78.6"
    same = attrs.evolve(state, swing_key="2025-03-02")
    d2 = decide(example_input(), same, perp_cfg())
    assert d2.next_state.filled_levels == {"78.6"}
    assert d2.intents[0].level == "61.8"


def test_new_high_uses_today_as_swing_key_and_blocks() -> None:
    """P above the 60-bar high: key is today's date, days_since_ath 0, drawdown 0 blocks."""
    d = decide(example_input("121000"), StrategyState(), perp_cfg())
    assert d.diag.swing_key == NOW.date().isoformat()
    assert d.diag.days_since_ath == 0
    assert {"DRAWDOWN", "TOO_SOON_AFTER_HIGH"} <= d.codes()


def test_negative_position_unsupported_and_bad_account_invalid() -> None:
    """9.10: Q < 0 is POSITION_UNSUPPORTED; non-finite account figures are ACCOUNT_INVALID; no BUY."""
    base = example_input()
    d = decide(attrs.evolve(base, position=Position(qty=Decimal("-0.1"), avg_entry=Decimal(1))), StrategyState(),
               perp_cfg())
    assert "POSITION_UNSUPPORTED" in d.codes()
    assert d.intents == ()
    d = decide(attrs.evolve(base, account=Account(equity=Decimal("NaN"), available=Decimal(1))), StrategyState(),
               perp_cfg())
    assert "ACCOUNT_INVALID" in d.codes()
    assert d.intents == ()


def test_external_fear_index_sources() -> None:
    """external: missing or old index is FG_MISSING; external_else_proxy falls back; a fresh value is used."""
    base = example_input()
    ext = perp_cfg(signal=SignalConfig(fear_greed_source="external"))
    assert "FG_MISSING" in decide(base, StrategyState(), ext).codes()
    old = attrs.evolve(base, fear_greed=FearGreed(value=10.0, ts=NOW - timedelta(hours=37)))
    assert "FG_MISSING" in decide(old, StrategyState(), ext).codes()
    fresh = attrs.evolve(base, fear_greed=FearGreed(value=90.0, ts=NOW - timedelta(hours=2)))
    d = decide(fresh, StrategyState(), ext)
    assert d.diag.fg == 90.0
    assert d.codes() == {"FEAR"}
    fallback = perp_cfg(signal=SignalConfig(fear_greed_source="external_else_proxy"))
    d = decide(old, StrategyState(), fallback)
    assert d.diag.fg == d.diag.fg_proxy
    assert d.diag.fg_label == "fear proxy"
    assert d.buys


def test_liq_warn_blocks_and_warns() -> None:
    """4: a liquidation distance under 25 % blocks entries and emits WARN, without halting."""
    inp = example_input(qty="0.25", avg=104000, est_liq=Decimal(76000))
    d = decide(inp, StrategyState(), perp_cfg())
    assert ("BLOCK", "LIQ_WARN") in {(e.kind, e.code) for e in d.events}
    assert ("WARN", "LIQ_WARN") in {(e.kind, e.code) for e in d.events}
    assert d.intents == ()
    assert not d.next_state.halted


def test_liq_critical_latches_halt_without_selling_by_default() -> None:
    """4: under 15 % the HALT is latched, no SELL by default, and the next call is blocked as HALTED."""
    inp = example_input(qty="0.25", avg=104000, est_liq=Decimal(88000))
    d = decide(inp, StrategyState(), perp_cfg())
    assert "LIQ_CRITICAL" in d.codes("HALT")
    assert d.intents == ()
    assert d.next_state.halted
    assert d.next_state.halt_reason is not None
    again = decide(example_input(), d.next_state, perp_cfg())
    assert "HALTED" in again.codes()
    assert again.intents == ()


def test_stale_price_cannot_trip_a_halt() -> None:
    """9.2: with an unusable price the monitor emits no LIQ event and cannot latch halted."""
    inp = example_input(qty="0.25", avg=104000, est_liq=Decimal(95000))
    inp = attrs.evolve(inp, price=PriceObs(value=Decimal(98200), ts=NOW - timedelta(minutes=5)))
    d = decide(inp, StrategyState(), perp_cfg())
    assert not d.next_state.halted
    assert d.codes("HALT") == frozenset()
    assert d.codes("BLOCK") == {"PRICE_STALE"}
    assert d.codes("WARN") == frozenset()


def test_deleverage_sell_restores_target_distance() -> None:
    """9.5: with deleverage_on_critical the reduce-only SELL is rounded up and restores >= 25 % distance."""
    cfg = perp_cfg(risk=RiskConfig(default_mmf=Decimal("0.005"), deleverage_on_critical=True))
    inp = example_input(equity=3000, qty="0.5", avg=100000)
    d = decide(inp, StrategyState(), cfg)
    assert "LIQ_CRITICAL" in d.codes("HALT")
    (sell,) = d.intents
    assert sell.side == "SELL"
    assert sell.reduce_only
    assert sell.intent_id == f"nanpin:BTC_USDC_PERP:{NOW.date().isoformat()}:delever:1"
    assert sell.limit_price == Decimal("97709")
    assert sell.qty % Decimal("0.00001") == 0
    assert sell.projected.liq_distance is not None
    assert sell.projected.liq_distance >= Decimal("0.25")
    # one step less would not be enough
    rest = Decimal("0.5") - sell.qty + Decimal("0.00001")
    p = (rest * 98200 - 3000) / (rest * Decimal("0.995"))
    assert (98200 - p) / 98200 < Decimal("0.25")
    d2 = decide(inp, d.next_state, cfg)
    assert d2.intents[0].intent_id.endswith(":delever:2")


def test_rearm_guard_blocks_rebuy_under_new_key() -> None:
    """9.11 / 9.14: a ratio bought 100 h ago under an older key is skipped; REARM_GUARD when nothing is left."""
    state = StrategyState(swing_key="2025-02-01", level_last_fill_at={"0.786": NOW - timedelta(hours=100)})
    d = decide(example_input(), state, perp_cfg())
    assert [i.level for i in d.intents] == ["61.8"]
    both = attrs.evolve(state, level_last_fill_at={"0.786": NOW - timedelta(hours=100),
                                                    "0.618": NOW - timedelta(hours=167)})
    d = decide(example_input(), both, perp_cfg())
    assert d.codes() == {"REARM_GUARD"}
    assert d.intents == ()
    off = perp_cfg(cooldown=CooldownConfig(rearm_guard_h=0))
    assert decide(example_input(), both, off).intents[0].level == "78.6"
    expired = attrs.evolve(state, level_last_fill_at={"0.786": NOW - timedelta(hours=168)})
    assert decide(example_input(), expired, perp_cfg()).intents[0].level == "78.6"


def test_range_too_small_blocks() -> None:
    """9.3: a swing range under min_range_frac is BLOCK RANGE_TOO_SMALL with no levels."""
    d = decide(example_input(), StrategyState(), perp_cfg(swing=SwingConfig(min_range_frac=0.5)))
    assert "RANGE_TOO_SMALL" in d.codes()
    assert d.diag.levels == ()
    assert d.intents == ()


def test_size_below_min_names_binding_cap() -> None:
    """9.3: caps below the minimum give SIZE_BELOW_MIN with diag.binding_cap naming the cap."""
    state = StrategyState(day=NOW.date(), day_start_equity=Decimal(10000), day_bought_notional=Decimal(9995))
    d = decide(example_input(), state, perp_cfg())
    assert d.codes() == {"SIZE_BELOW_MIN"}
    assert d.diag.binding_cap == "daily"
    assert "daily" in next(e.detail for e in d.events if e.code == "SIZE_BELOW_MIN")


def test_legacy_budget_exhausted_and_base_fixed() -> None:
    """3.7 / 9.1: legacy budget base is set once; remaining below 500 is BUDGET_EXHAUSTED."""
    cfg = perp_cfg(sizing=SizingConfig(mode="legacy"))
    state = StrategyState(legacy_budget_base=Decimal(10000), legacy_margin_deployed=Decimal(9600))
    d = decide(example_input(equity=20000), state, cfg)
    assert d.codes() == {"BUDGET_EXHAUSTED"}
    assert d.next_state.legacy_budget_base == 10000


def test_daily_loss_and_equity_drawdown_block() -> None:
    """4: a 10 % loss since the day start and equity under half the peak each block entries."""
    state = StrategyState(day=NOW.date(), day_start_equity=Decimal(12000), peak_equity=Decimal(12000))
    assert "DAILY_LOSS" in decide(example_input(), state, perp_cfg()).codes()
    state = StrategyState(peak_equity=Decimal(30000))
    d = decide(example_input(), state, perp_cfg())
    assert d.codes() == {"EQUITY_DRAWDOWN"}
    assert d.next_state.peak_equity == 30000


def test_day_roll_and_peak_bookkeeping() -> None:
    """3.1: a new UTC day resets day_start_equity and day_bought_notional; peak is a running max."""
    state = StrategyState(day=NOW.date() - timedelta(days=1), day_start_equity=Decimal(8000),
                          day_bought_notional=Decimal(5000), peak_equity=Decimal(9000))
    d = decide(example_input(), state, perp_cfg())
    assert d.next_state.day == NOW.date()
    assert d.next_state.day_start_equity == 10000
    assert d.next_state.day_bought_notional == 0
    assert d.next_state.peak_equity == 10000


def test_cluster_defer_and_max_entries() -> None:
    """3.5: a fresh big long-liq cluster just below P defers; max_total_entries blocks."""
    cfg = perp_cfg(clusters=ClustersConfig(enabled=True))
    cluster = LiqCluster(price=Decimal(96000), notional_usd=Decimal(6_000_000), side="long_liq",
                         observed_at=NOW - timedelta(seconds=60), source="test")
    inp = attrs.evolve(example_input(), clusters=(cluster,))
    assert decide(inp, StrategyState(), cfg).codes() == {"CLUSTER_DEFER"}
    old = attrs.evolve(cluster, observed_at=NOW - timedelta(seconds=901))
    assert decide(attrs.evolve(inp, clusters=(old,)), StrategyState(), cfg).buys
    capped = perp_cfg(risk=RiskConfig(default_mmf=Decimal("0.005"), max_total_entries=2))
    assert decide(example_input(), StrategyState(entries_total=2), capped).codes() == {"MAX_ENTRIES"}


def test_spot_cash_cap_bounds_cost_with_fee() -> None:
    """9.13(e): in spot the cash cap bounds qty x limit x (1 + fee) by the free quote less the reserve."""
    d = decide(example_input(equity=10000, available=500), StrategyState(), spot_cfg())
    (buy,) = d.intents
    assert d.diag.binding_cap == "cash"
    assert buy.qty * buy.limit_price * Decimal("1.001") <= Decimal(400)
    assert (buy.qty + Decimal("0.00001")) * buy.limit_price * Decimal("1.001") > Decimal(400)


def test_exchange_fee_rate_wins() -> None:
    """9.15: an account-reported taker fee replaces the configured one in the cash cap."""
    base = example_input(equity=10000, available=500)
    fee = attrs.evolve(base, account=attrs.evolve(base.account, taker_fee_frac=Decimal("0.05")))
    d = decide(fee, StrategyState(), spot_cfg())
    assert d.intents[0].qty * d.intents[0].limit_price * Decimal("1.05") <= Decimal(400)
    assert d.intents[0].qty < decide(base, StrategyState(), spot_cfg()).intents[0].qty


def test_est_liq_above_model_shifts_floor_down() -> None:
    """3.8: an exchange liq estimate above the model lowers p_floor by the gap, never raising it."""
    inp = example_input(available=7545, qty="0.25", avg=104000)
    model = decide(inp, StrategyState(), perp_cfg())
    assert model.diag.p_floor == Decimal(68740)
    shifted = decide(attrs.evolve(inp, position=attrs.evolve(inp.position, est_liq_price=Decimal(60492))),
                     StrategyState(), perp_cfg())
    assert model.diag.liq_now is not None
    expected = Decimal(68740) - (Decimal(60492) - model.diag.liq_now)
    assert shifted.diag.p_floor == pytest.approx(expected, abs=Decimal("1e-20"))
    lower = decide(attrs.evolve(inp, position=attrs.evolve(inp.position, est_liq_price=Decimal(50000))),
                   StrategyState(), perp_cfg())
    assert lower.diag.p_floor == Decimal(68740)


def test_naive_datetimes_are_taken_as_utc() -> None:
    """Naive datetimes are read as UTC, giving the same decision as aware ones."""
    aware = example_input()
    naive_now = NOW.replace(tzinfo=None)
    naive = attrs.evolve(aware, now=naive_now, price=PriceObs(value=Decimal(98200), ts=naive_now))
    assert decide(naive, StrategyState(), perp_cfg()).intents == decide(aware, StrategyState(), perp_cfg()).intents


@pytest.mark.parametrize("minutes", [0, 1])
def test_history_threshold_configurable(minutes: int) -> None:
    """HISTORY_SHORT follows data.min_history_bars."""
    cfg = perp_cfg(data=DataConfig(min_history_bars=81 - minutes))
    d = decide(example_input(), StrategyState(), cfg)
    assert ("HISTORY_SHORT" in d.codes()) == (minutes == 0)


def test_aware_non_utc_now_uses_utc_day() -> None:
    """The UTC day of `now` decides the day roll even when `now` carries another offset."""
    from datetime import timezone

    tz = timezone(timedelta(hours=-10))
    local = NOW.astimezone(tz)
    assert local.date() != NOW.date()
    d = decide(attrs.evolve(example_input(), now=local), StrategyState(), perp_cfg())
    assert d.next_state.day == NOW.date()
    assert NOW.tzinfo is UTC
