"""Pure adapters between engine records and nanpin inputs: prices, bars, account, state blob, status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backpack.responses import MarketFilters
from engine.market.clusters import Cluster
from engine.market.prices import Stale
from engine.nanpin import NanpinConfig, StrategyState, decide
from engine.nanpin.config import ClustersConfig, MarketConfig
from engine.strategy_inputs import (
    DAY_MS,
    account_inputs,
    bars_from_candles,
    clusters_from_view,
    decision_input,
    market_rules,
    ms_to_datetime,
    reference_price,
    state_from_blob,
    state_to_blob,
    strategy_status,
)
from tests.nanpin.scenarios import NOW, PERP_RULES, example_bars, example_input, spot_cfg
from tests.strategy.builders import book, candles_of, price, snapshot, state_of, view_of

NOW_MS = int(NOW.timestamp() * 1000)
SPOT = NanpinConfig()
PERP = NanpinConfig(market=MarketConfig(symbol="BTC_USDC_PERP", market_type="perp"))

stale_quotes = st.builds(Stale, reason=st.text(max_size=10),
                         age_s=st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False))
decimals = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2)


@settings(max_examples=60)
@given(mid=stale_quotes, mark=stale_quotes, fresh_book=st.booleans(), with_book=st.booleans(),
       perp=st.booleans(), level=decimals)
def test_a_stale_quote_never_yields_a_number(mid: Stale, mark: Stale, fresh_book: bool, with_book: bool,
                                             perp: bool, level: Decimal) -> None:
    """With every usable source stale (and no fresh book for spot), the price is None and decide blocks."""
    cfg = PERP if perp else SPOT
    # A perp ignores the book; spot may only use it while it is fresh.
    summary = book(level, fresh=fresh_book and perp) if with_book else None
    state = state_of(cfg.market.symbol, candles=candles_of(example_bars()), mid=mid, mark=mark,
                     book_summary=summary)
    view = view_of(state, as_of_ms=NOW_MS)
    assert reference_price(state, NOW_MS, perp=perp) is None
    inp = decision_input(cfg, view, snapshot(cfg.market.symbol, qty="0.1", avg=90000), PERP_RULES, now_ms=NOW_MS)
    assert inp.price is None
    decision = decide(inp, StrategyState(), cfg)
    assert "PRICE_STALE" in decision.codes("BLOCK")
    assert not decision.intents


def test_spot_price_is_the_fresh_book_mid_stamped_with_its_age() -> None:
    """Spot: mid of best bid/ask of a fresh book, observed at view time minus the book's age."""
    state = state_of("BTC_USDC", book_summary=book(Decimal("100000"), age_s=2.5, half_spread=Decimal("1.5")),
                     mid=price("99000"))
    obs = reference_price(state, NOW_MS, perp=False)
    assert obs is not None
    assert obs.value == Decimal("100000")
    assert obs.ts == NOW - timedelta(seconds=2.5)


def test_spot_falls_back_to_the_mid_quote_when_the_book_is_not_fresh() -> None:
    """Spot: a stale book is skipped for the cache's mid quote (its own priority rule), never kept."""
    state = state_of("BTC_USDC", book_summary=book(Decimal("100000"), fresh=False), mid=price("99000", age_s=1))
    obs = reference_price(state, NOW_MS, perp=False)
    assert obs is not None
    assert obs.value == Decimal("99000")
    assert obs.ts == NOW - timedelta(seconds=1)


def test_perp_price_is_the_mark_price() -> None:
    """Perp: the mark quote, even when a fresh book says otherwise."""
    state = state_of("BTC_USDC_PERP", book_summary=book(Decimal("100000")), mark=price("100100"))
    obs = reference_price(state, NOW_MS, perp=True)
    assert obs is not None
    assert obs.value == Decimal("100100")


def test_a_view_without_the_market_gives_no_bars_and_no_price() -> None:
    """The configured market missing from the view blocks on price and bars instead of failing."""
    view = view_of(state_of("ETH_USDC", mid=price("3000")), as_of_ms=NOW_MS)
    inp = decision_input(SPOT, view, snapshot(), PERP_RULES, now_ms=NOW_MS)
    assert inp.price is None
    assert inp.bars == ()
    assert {"PRICE_STALE", "BARS_STALE"} <= decide(inp, StrategyState(), SPOT).codes("BLOCK")


@settings(max_examples=50)
@given(first_day=st.integers(min_value=17000, max_value=21000), n=st.integers(min_value=0, max_value=40),
       now_offset_ms=st.integers(min_value=-2 * DAY_MS, max_value=2 * DAY_MS),
       limit=st.none() | st.integers(min_value=1, max_value=50))
def test_bars_are_the_closed_daily_candles_at_midnight_utc(first_day: int, n: int, now_offset_ms: int,
                                                           limit: int | None) -> None:
    """Bars keep order and values, start at 00:00 UTC (aware), exclude unclosed candles, keep the newest."""
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=first_day)
    bars = tuple(attrs.evolve(b, start=start + timedelta(days=i)) for i, b in enumerate(example_bars()[:n]))
    candles = candles_of(bars)
    now_ms = int((start + timedelta(days=n)).timestamp() * 1000) + now_offset_ms
    out = bars_from_candles(candles, now_ms, limit=limit)
    closed = [b for b, c in zip(bars, candles, strict=True) if c.end_ms <= now_ms]
    expected = closed if limit is None else closed[-limit:]
    assert list(out) == expected
    for bar in out:
        assert bar.start.tzinfo is not None
        assert bar.start.utcoffset() == timedelta(0)
        assert (bar.start.hour, bar.start.minute, bar.start.second, bar.start.microsecond) == (0, 0, 0, 0)
        assert bar.start + timedelta(days=1) <= ms_to_datetime(now_ms)


def test_decision_input_keeps_only_the_history_window() -> None:
    """A long history is trimmed to what the strategy can see, the newest bars kept."""
    bars = example_bars()
    view = view_of(state_of("BTC_USDC", candles=candles_of(bars), book_summary=book(Decimal("98200"))),
                   as_of_ms=NOW_MS)
    cfg = attrs.evolve(SPOT, data=attrs.evolve(SPOT.data, min_history_bars=30))
    inp = decision_input(cfg, view, snapshot(), PERP_RULES, now_ms=NOW_MS)
    assert inp.bars[-1] == bars[-1]
    assert len(inp.bars) == 75  # the largest swing window of the defaults


@settings(max_examples=50)
@given(quote=decimals, locked=decimals, qty=st.decimals(min_value=0, max_value=10, places=5), px=decimals)
def test_spot_equity_is_quote_plus_position_value(quote: Decimal, locked: Decimal, qty: Decimal,
                                                  px: Decimal) -> None:
    """9.13(c,d): available = free quote; equity = quote (available + locked) + qty x price."""
    snap = attrs.evolve(snapshot(quote=quote, qty=qty), quote_locked=locked)
    obs = example_input(px).price
    account, position = account_inputs(snap, obs, perp=False)
    assert account.available == quote
    assert account.equity == quote + locked + qty * px
    assert position.qty == qty


def test_spot_equity_without_a_price_is_not_invented() -> None:
    """A held position with no price gives NaN equity, which decide reports instead of using."""
    account, _ = account_inputs(snapshot(qty="0.5", avg=90000), None, perp=False)
    assert account.equity.is_nan()
    inp = attrs.evolve(example_input(), price=None, account=account)
    decision = decide(inp, StrategyState(), SPOT)
    assert "ACCOUNT_INVALID" in decision.codes("BLOCK")
    assert decision.next_state.peak_equity == 0


def test_perp_equity_comes_from_the_exchange_only() -> None:
    """Perp: netEquity as reported; absent, it stays unknown (NaN)."""
    acc, _ = account_inputs(snapshot("BTC_USDC_PERP", equity=Decimal(12345)), None, perp=True)
    assert acc.equity == Decimal(12345)
    acc, _ = account_inputs(snapshot("BTC_USDC_PERP"), example_input().price, perp=True)
    assert acc.equity.is_nan()


def test_clusters_are_used_only_when_enabled() -> None:
    """Clusters become one LiqCluster per side with notional, and none while the feature is off."""
    cluster = Cluster(price_lo=Decimal(90000), price_hi=Decimal(91000), weight=Decimal(3_000_000),
                      longs_liquidated=Decimal(2_000_000), shorts_liquidated=Decimal(0), last_ms=NOW_MS)
    state = attrs.evolve(state_of("BTC_USDC"), clusters=(cluster,))
    assert clusters_from_view(state, SPOT) == ()
    on = attrs.evolve(SPOT, clusters=ClustersConfig(enabled=True))
    (liq,) = clusters_from_view(state, on)
    assert (liq.side, liq.price, liq.notional_usd, liq.observed_at) == (
        "long_liq", Decimal(90500), Decimal(2_000_000), NOW)


def test_market_rules_copy_the_filters() -> None:
    """Tick, step and minimum quantity come from the exchange; Backpack has no minimum notional."""
    filters = MarketFilters(tick_size=Decimal("0.1"), min_price=None, max_price=None, step_size=Decimal("0.00001"),
                            min_quantity=Decimal("0.0001"), max_quantity=None)
    rules = market_rules(filters)
    assert (rules.tick_size, rules.step_size, rules.min_qty, rules.min_notional) == (
        Decimal("0.1"), Decimal("0.00001"), Decimal("0.0001"), Decimal(0))


aware = st.datetimes(min_value=datetime(2017, 1, 1), max_value=datetime(2030, 1, 1),
                     timezones=st.just(UTC)).map(lambda d: d.replace(fold=0))  # fold means nothing in UTC
money = st.decimals(min_value=0, max_value=Decimal("1e9"), places=8)
names = st.sampled_from(["23.6", "38.2", "50.0", "61.8", "78.6"])
states = st.builds(
    StrategyState,
    swing_key=st.none() | st.text(min_size=1, max_size=12),
    filled_levels=st.frozensets(names),
    last_entry_at=st.none() | aware,
    level_last_fill_at=st.dictionaries(st.sampled_from(["0.236", "0.382", "0.5", "0.618", "0.786"]), aware),
    entries_total=st.integers(min_value=0, max_value=10_000),
    legacy_margin_deployed=money,
    legacy_budget_base=st.none() | money,
    day=st.none() | st.dates(),
    day_start_equity=money,
    day_bought_notional=money,
    peak_equity=money,
    halted=st.booleans(),
    halt_reason=st.none() | st.text(max_size=20),
    day_delever_count=st.integers(min_value=0, max_value=50),
    recent_fill_intents=st.lists(st.text(min_size=1, max_size=30), max_size=5).map(tuple),
)


@settings(max_examples=80)
@given(state=states)
def test_state_json_round_trip_is_identity(state: StrategyState) -> None:
    """state_from_blob(json(state_to_blob(s))) == s, Decimal scale included."""
    blob = json.loads(json.dumps(state_to_blob(state)))
    back = state_from_blob(blob)
    assert back == state
    # Equal Decimals may differ in scale ("1.0" vs "1"); the blob keeps the exact text.
    for field in attrs.fields(StrategyState):
        if isinstance(getattr(state, field.name), Decimal):
            assert str(getattr(back, field.name)) == str(getattr(state, field.name))


@pytest.mark.parametrize(("key", "value"), [
    ("schema", 2), ("peak_equity", "abc"), ("peak_equity", 5), ("entries_total", True), ("day", "not a day"),
    ("filled_levels", [1]), ("last_entry_at", "yesterday"), ("halted", "no"), ("day_start_equity", "NaN"),
])
def test_a_malformed_blob_is_rejected_with_its_key(key: str, value: object) -> None:
    """Every bad field raises ValueError naming it; nothing is defaulted silently."""
    blob = state_to_blob(StrategyState())
    blob[key] = value
    with pytest.raises(ValueError, match=key):
        state_from_blob(blob)


def test_status_reports_levels_blocks_and_the_next_level() -> None:
    """The status mirrors the decision's ladder, marks filled levels and names the next band below P."""
    cfg = spot_cfg()
    decision = decide(example_input("105000"), StrategyState(), cfg)
    state = attrs.evolve(decision.next_state, filled_levels=frozenset({"23.6"}))
    status = strategy_status(decision, state, "BTC_USDC", NOW_MS)
    assert status.price == Decimal(105000)
    assert [lb.name for lb in status.levels] == [lv.name for lv in decision.diag.levels]
    assert {lb.name for lb in status.levels if lb.filled} == {"23.6"}
    assert status.blocks == tuple(sorted(decision.codes("BLOCK")))
    assert status.next_level is not None
    assert not status.next_level.filled
    assert status.next_level.band_lo <= Decimal(105000)
    assert all(lb.price <= status.next_level.price for lb in status.levels
               if not lb.filled and lb.band_lo <= Decimal(105000))
