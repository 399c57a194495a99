"""Pure risk rules: each check, their order, the rate window, the kill switch latch and persistence."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import AccountSnapshot
from engine.market.prices import Price, Quote, Stale
from engine.nanpin.types import OrderIntent
from engine.risk.rules import (
    RATE_WINDOW_MS,
    Approve,
    Block,
    BlockCode,
    RiskBook,
    RiskLimits,
    check,
    current_quote,
    halt,
    observe_equity,
    resume,
    risk_state,
)
from tests.risk.factories import (
    PERP,
    SPOT,
    D,
    Scenario,
    account,
    accounts,
    intent,
    intents,
    limit_sets,
    limits,
    market_state,
    price,
    proposal,
    quotes,
    scenarios,
    stale,
    view,
)

REPO = Path(__file__).resolve().parents[2]
FAST = settings(max_examples=150, deadline=None)


def _code(outcome_verdict: Approve | Block) -> BlockCode | None:
    return outcome_verdict.code if isinstance(outcome_verdict, Block) else None


def _verdict(i: OrderIntent, *, quote: Quote | None = None, acct: AccountSnapshot | None = None,
             book: RiskBook | None = None, lim: RiskLimits | None = None, now_ms: int = 0) -> Approve | Block:
    return check(book or RiskBook(), proposal(i), quote if quote is not None else price(), acct or account(),
                 now_ms, lim or limits()).verdict


# -- each rule, on an otherwise approvable intent ---------------------------------------------------------


def test_baseline_spot_buy_is_approved() -> None:
    """A small spot buy near the price, with a reconciled account and room everywhere, is approved."""
    assert _verdict(intent()) == Approve(price=D("50000"))


def test_baseline_perp_buy_is_approved() -> None:
    """A perp buy whose projected liquidation is far below the price is approved."""
    acct = account(symbol=PERP, mmf=D("0.01"))
    assert _verdict(intent(symbol=PERP, liq=D("10000")), acct=acct) == Approve(price=D("50000"))


@pytest.mark.parametrize(
    ("i", "acct", "quote", "book", "lim", "code"),
    [
        (intent(), None, None, RiskBook(kill_reason="dd"), None, BlockCode.KILL_SWITCH),
        (intent(), None, None, RiskBook(halt_reason="op"), None, BlockCode.HALTED),
        (intent(qty=D("0")), None, None, None, None, BlockCode.INVALID_INTENT),
        (intent(side="SELL"), None, None, None, None, BlockCode.INVALID_INTENT),
        (intent(side="HOLD"), None, None, None, None, BlockCode.INVALID_INTENT),
        (intent(), None, stale(), None, None, BlockCode.STALE_PRICE),
        (intent(), account(reconciled=False), None, None, None, BlockCode.ACCOUNT_UNKNOWN),
        (intent(), account(symbol=PERP), None, None, None, BlockCode.ACCOUNT_UNKNOWN),
        (intent(), account(equity=None), None, None, None, BlockCode.ACCOUNT_UNKNOWN),
        (intent(limit=D("60000")), None, None, None, None, BlockCode.PRICE_SANITY),
        (intent(limit=D("40000")), None, None, None, None, BlockCode.PRICE_SANITY),
        (intent(qty=D("0.3")), None, None, None, None, BlockCode.ORDER_NOTIONAL),
        (intent(side="SELL", reduce_only=True, qty=D("0.02")), account(position_qty=D("0.01")), None, None, None,
         BlockCode.REDUCE_EXCEEDS_POSITION),
        (intent(), account(position_qty=D("0.49")), None, None, limits(max_position_notional_usdc=D("25000")),
         None),
        (intent(), account(position_qty=D("0.5")), None, None, limits(max_position_notional_usdc=D("25000")),
         BlockCode.POSITION_NOTIONAL),
        (intent(), account(position_qty=D("0.59")), None, None, None, None),
        (intent(), account(position_qty=D("0.6"), equity=D("10000")), None, None, None, BlockCode.LEVERAGE),
        (intent(proj_leverage=D("3.5")), None, None, None, None, BlockCode.LEVERAGE),
        (intent(), account(equity=D("0")), None, None, None, BlockCode.LEVERAGE),
        (intent(symbol=PERP), account(symbol=PERP), None, None, None, BlockCode.LIQ_UNKNOWN),
        (intent(symbol=PERP, liq=D("36000")), account(symbol=PERP), None, None, None, BlockCode.LIQ_DISTANCE),
        (intent(), account(open_orders=5), None, None, None, BlockCode.OPEN_ORDERS),
        (intent(), None, None, RiskBook(approved_ms=tuple(range(30))), None, BlockCode.RATE_LIMIT),
    ],
)
def test_each_rule_blocks_with_its_code(i: OrderIntent, acct: AccountSnapshot | None, quote: Quote | None,
                                        book: RiskBook | None, lim: RiskLimits | None,
                                        code: BlockCode | None) -> None:
    """Each rule, violated alone, blocks with its own code (None: the boundary case is approved)."""
    assert _code(_verdict(i, acct=acct, quote=quote, book=book, lim=lim)) == code


def test_missing_account_blocks() -> None:
    """No account snapshot at all blocks as ACCOUNT_UNKNOWN."""
    outcome = check(RiskBook(), proposal(intent()), price(), None, 0, limits())
    assert _code(outcome.verdict) == BlockCode.ACCOUNT_UNKNOWN


def test_own_liq_estimate_blocks_when_strategy_projection_is_optimistic() -> None:
    """Risk's own liquidation estimate wins when it is closer than the strategy's projection."""
    # Own estimate: L = (Q'P - (equity - slippage)) / (Q'(1 - mmf)); 0.31 BTC -> ~17923 (64% below),
    # 0.56 BTC -> ~32468 (35% below, under the 40% minimum) while the strategy claims 1.
    lim = limits(min_liq_distance_frac=D("0.4"))
    acct = account(symbol=PERP, position_qty=D("0.3"), mmf=D("0.01"))
    assert _verdict(intent(symbol=PERP, liq=D("1")), acct=acct, lim=lim) == Approve(price=D("50000"))
    acct = account(symbol=PERP, position_qty=D("0.55"), mmf=D("0.01"))
    assert _code(_verdict(intent(symbol=PERP, liq=D("1")), acct=acct, lim=lim)) == BlockCode.LIQ_DISTANCE


def test_check_order_halt_before_stale_before_account() -> None:
    """With several problems at once, the earliest check in the documented order names the block."""
    bad_acct = account(reconciled=False)
    assert _code(_verdict(intent(), quote=stale(), acct=bad_acct, book=RiskBook(kill_reason="dd",
                                                                                halt_reason="op"))) \
        == BlockCode.KILL_SWITCH
    assert _code(_verdict(intent(), quote=stale(), acct=bad_acct)) == BlockCode.STALE_PRICE


def test_reduce_only_passes_halt_and_kill_switch() -> None:
    """A reduce-only sell lowers exposure, so neither the halt nor the kill switch stops it."""
    sell = intent(side="SELL", reduce_only=True, limit=D("49950"))
    acct = account(position_qty=D("0.5"))
    book = RiskBook(kill_reason="dd", halt_reason="op")
    assert _verdict(sell, acct=acct, book=book) == Approve(price=D("50000"))


def test_reduce_only_on_stale_price_only_when_allowed() -> None:
    """On a stale price a reduce-only order passes only with block_on_stale = false; an entry never does."""
    sell = intent(side="SELL", reduce_only=True, limit=D("49950"))
    acct = account(position_qty=D("0.5"))
    assert _code(_verdict(sell, acct=acct, quote=stale())) == BlockCode.STALE_PRICE
    relaxed = limits(block_on_stale=False)
    assert _verdict(sell, acct=acct, quote=stale(), lim=relaxed) == Approve(price=None)
    assert _code(_verdict(intent(), quote=stale(), lim=relaxed)) == BlockCode.STALE_PRICE


# -- properties ---------------------------------------------------------------------------------------------


@FAST
@given(i=intents, acct=accounts, lim=limit_sets, reason=st.text(max_size=10), now=st.integers(0, 10**12))
def test_stale_price_never_approves_an_entry(i: OrderIntent, acct: AccountSnapshot | None, lim: RiskLimits,
                                             reason: str, now: int) -> None:
    """A Stale quote never approves an entry, and never approves anything while block_on_stale is on."""
    verdict = check(RiskBook(), proposal(i), Stale(reason=reason, age_s=None), acct, now, lim).verdict
    if not i.reduce_only or lim.block_on_stale:
        assert isinstance(verdict, Block)


@FAST
@given(i=intents, quote=quotes, acct=accounts, lim=limit_sets,
       halted=st.none() | st.just("op"), killed=st.none() | st.just("dd"))
def test_every_verdict_is_approve_or_counted_block(i: OrderIntent, quote: Quote, acct: AccountSnapshot | None,
                                                   lim: RiskLimits, halted: str | None,
                                                   killed: str | None) -> None:
    """Every block carries a known code and a reason and bumps exactly its own counter; approvals bump theirs."""
    book = RiskBook(halt_reason=halted, kill_reason=killed, blocks=(("STALE_PRICE", 2),), approvals=3)
    outcome = check(book, proposal(i), quote, acct, 0, lim)
    if isinstance(outcome.verdict, Block):
        assert outcome.verdict.code in BlockCode
        assert outcome.verdict.detail
        expected = dict(book.blocks)
        expected[outcome.verdict.code.value] = expected.get(outcome.verdict.code.value, 0) + 1
        assert dict(outcome.book.blocks) == expected
        assert outcome.book.approvals == 3
    else:
        assert outcome.book.approvals == 4
        assert outcome.book.blocks == book.blocks


def _approves(s: Scenario) -> bool:
    return isinstance(check(RiskBook(), proposal(s.intent), s.quote, s.account, 0, s.limits).verdict, Approve)


def test_scenarios_reach_approvals() -> None:
    """The scenario strategy does produce approvals of each kind, so the caps property below is not vacuous."""
    kinds: set[tuple[str, bool]] = set()

    @settings(max_examples=300, database=None, derandomize=True, deadline=None)
    @given(s=scenarios())
    def probe(s: Scenario) -> None:
        if _approves(s):
            kinds.add((s.intent.symbol, s.intent.reduce_only))

    probe()
    assert kinds == {(SPOT, False), (SPOT, True), (PERP, False), (PERP, True)}


@FAST
@given(s=scenarios() | st.builds(Scenario, intent=intents, quote=quotes, account=accounts, limits=limit_sets))
def test_caps_hold_for_every_approval(s: Scenario) -> None:
    """Every approval satisfies the price band, notional, leverage, liquidation and open-order limits."""
    i, quote, acct, lim = s.intent, s.quote, s.account, s.limits
    verdict = check(RiskBook(), proposal(i), quote, acct, 0, lim).verdict
    if not isinstance(verdict, Approve):
        return
    assert acct is not None
    assert acct.reconciled
    assert acct.open_orders < lim.max_open_orders
    assert i.qty > 0
    if i.reduce_only:
        assert i.qty <= acct.position_qty
        return
    assert isinstance(quote, Price)
    p = quote.value
    assert abs(i.limit_price - p) <= lim.price_band_frac * p
    if lim.max_order_notional_usdc > 0:
        assert i.qty * max(p, i.limit_price) <= lim.max_order_notional_usdc
    new_qty = acct.position_qty + i.qty
    if lim.max_position_notional_usdc > 0:
        assert new_qty * p <= lim.max_position_notional_usdc
    assert acct.equity is not None
    assert acct.equity > 0
    assert new_qty * p <= lim.max_account_leverage * acct.equity
    assert i.projected.account_leverage <= lim.max_account_leverage
    if i.symbol == PERP:
        floor = p * (1 - lim.min_liq_distance_frac)
        if i.projected.liq_price is not None:
            assert i.projected.liq_price <= floor
        if acct.mmf is not None:
            equity_after = acct.equity - i.qty * max(D(0), i.limit_price - p)
            liq = (new_qty * p - equity_after) / (new_qty * (1 - acct.mmf))
            assert liq <= floor


@FAST
@given(gaps=st.lists(st.integers(0, 30_000), min_size=1, max_size=60), cap=st.integers(1, 8))
def test_approvals_never_exceed_the_rate_and_fill_it_exactly(gaps: list[int], cap: int) -> None:
    """Approvals in any 60 s window never exceed the cap, and a proposal is refused only when the window is full."""
    lim = limits(max_orders_per_minute=cap, max_open_orders=100)
    book = RiskBook()
    now = 1_000_000
    approved: list[int] = []
    for gap in gaps:
        now += gap
        in_window = sum(1 for t in approved if t > now - RATE_WINDOW_MS)
        outcome = check(book, proposal(intent()), price(), account(), now, lim)
        book = outcome.book
        if isinstance(outcome.verdict, Approve):
            assert in_window < cap
            approved.append(now)
        else:
            assert outcome.verdict.code == BlockCode.RATE_LIMIT
            assert in_window == cap
    for t in approved:
        assert sum(1 for u in approved if t - RATE_WINDOW_MS < u <= t) <= cap


@FAST
@given(equities=st.lists(st.decimals(min_value=D("-10"), max_value=D("100000"), places=2, allow_nan=False,
                                     allow_infinity=False), min_size=1, max_size=40),
       frac=st.decimals(min_value=D("0.01"), max_value=D("1"), places=2),
       resume_at=st.none() | st.integers(0, 39))
def test_kill_switch_trips_exactly_at_threshold_and_latches(equities: list[Decimal], frac: Decimal,
                                                            resume_at: int | None) -> None:
    """The switch trips on the first equity whose drawdown from the running peak reaches the threshold,
    stays latched for every later equity, and only resume clears it (re-basing the peak)."""
    lim = limits(kill_switch_drawdown_frac=frac)
    book = RiskBook()
    peak = D(0)
    latched = False
    for n, equity in enumerate(equities):
        if n == resume_at:
            book = resume(book)
            assert not book.kill_switch
            if latched and equities[n - 1] > 0:
                peak = equities[n - 1]
            latched = False
        book, tripped = observe_equity(book, equity, lim)
        if not latched:
            peak = max(peak, equity)
            should = peak > 0 and (1 - equity / peak) >= frac
            assert tripped == should
            latched = should
        else:
            assert not tripped
        assert book.kill_switch == latched
        assert book.peak_equity == peak


@pytest.mark.parametrize(("equity", "trips"), [(D("4001"), False), (D("4000"), True), (D("3999.99"), True),
                                               (D("-5"), True)])
def test_kill_switch_boundary(equity: Decimal, trips: bool) -> None:
    """With a 0.60 threshold and a 10000 peak, equity 4000 (drawdown exactly 0.60) trips and 4001 does not."""
    book, _ = observe_equity(RiskBook(), D("10000"), limits())
    book, tripped = observe_equity(book, equity, limits())
    assert tripped == trips
    assert book.kill_switch == trips


def test_kill_switch_off_when_frac_zero() -> None:
    """A zero kill_switch_drawdown_frac never trips, even on a total loss."""
    book, _ = observe_equity(RiskBook(), D("1000"), limits(kill_switch_drawdown_frac=D("0")))
    book, tripped = observe_equity(book, D("0"), limits(kill_switch_drawdown_frac=D("0")))
    assert not tripped
    assert not book.kill_switch


def test_halt_and_resume() -> None:
    """An operator halt blocks entries until resume; only resuming from a trip re-bases the peak on equity."""
    book, _ = observe_equity(RiskBook(), D("1000"), limits())
    book, _ = observe_equity(book, D("800"), limits())
    book = halt(book, "maintenance")
    assert book.halted
    assert risk_state(book, 5).halt_reason == "maintenance"
    assert _code(_verdict(intent(), book=book)) == BlockCode.HALTED
    book = resume(book)
    assert not book.halted
    assert book.peak_equity == D("1000")  # an operator halt does not re-base the peak
    book, tripped = observe_equity(book, D("400"), limits())
    assert tripped
    book = resume(book)
    assert book.peak_equity == D("400")  # resuming from a trip does
    assert isinstance(_verdict(intent(), book=book), Approve)


# -- quotes, persistence, purity ----------------------------------------------------------------------------


def test_current_quote_ages_the_view() -> None:
    """A price counts only while its age plus the view's age is within max_price_age_ms; no view is Stale."""
    v = view(market_state(SPOT, last=price(age_s=2.0)), as_of_ms=100_000)
    assert isinstance(current_quote(v, SPOT, 13.0, 15_000), Price)
    assert isinstance(current_quote(v, SPOT, 13.001, 15_000), Stale)
    assert isinstance(current_quote(None, SPOT, 0.0, 15_000), Stale)
    assert isinstance(current_quote(v, PERP, 0.0, 15_000), Stale)


def test_current_quote_prefers_mark_for_perp() -> None:
    """Perpetuals are checked against the mark price when there is one, else the trade price."""
    v = view(market_state(PERP, last=price(D("50000")), mark=price(D("49000"))))
    assert current_quote(v, PERP, 0.0, 15_000) == price(D("49000"))
    v = view(market_state(PERP, last=price(D("50000"))))
    assert current_quote(v, PERP, 0.0, 15_000) == price(D("50000"))
    v = view(market_state(SPOT, last=price(D("50000")), mark=price(D("49000"))))
    assert current_quote(v, SPOT, 0.0, 15_000) == price(D("50000"))


def test_persisted_round_trip() -> None:
    """The persisted blob restores the latches, the peak and the rate window exactly."""
    book = RiskBook(halt_reason="op", kill_reason="dd", peak_equity=D("1234.5"), approved_ms=(1, 2),
                    equity=D("1"), approvals=9)
    restored = RiskBook.restored(book.persisted())
    assert restored == attrs.evolve(book, equity=None, approvals=0)


@pytest.mark.parametrize("blob", [{}, {"peak_equity": 5}, {"peak_equity": "x"}, {"peak_equity": "-1"},
                                  {"peak_equity": "1", "approved_ms": ["a"]}, {"peak_equity": "1", "kill_reason": 3}])
def test_restored_rejects_malformed_blob(blob: dict[str, object]) -> None:
    """A malformed persisted blob raises ValueError instead of restoring a guessed state."""
    with pytest.raises(ValueError, match="malformed"):
        RiskBook.restored(blob)


def test_limits_validate() -> None:
    """RiskLimits rejects a non-positive price band and price age."""
    with pytest.raises(ValueError, match="price_band_frac"):
        limits(price_band_frac=D("0"))
    with pytest.raises(ValueError, match="max_price_age_ms"):
        limits(max_price_age_ms=0)


def test_rules_module_is_pure() -> None:
    """Importing engine.risk in a fresh interpreter loads no I/O library, and its source reads no clock."""
    script = ("import sys, engine.risk\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in {'trio', 'httpx', 'socket', 'asyncio'}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert result.stdout.strip() == "[]"
    for path in (REPO / "engine" / "risk").glob("*.py"):
        names = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
        assert "time" not in names
        assert "datetime" not in names
