"""Builders and Hypothesis strategies for risk tests: intents, accounts, quotes, views and limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
from hypothesis import strategies as st

from engine.events import AccountSnapshot, Proposal
from engine.market.prices import Price, Quote, Stale
from engine.market.quality import QualityStats
from engine.market.view import MarketState, MarketView
from engine.nanpin.types import OrderIntent, Projection, client_id_for
from engine.risk.rules import RiskLimits

SPOT = "BTC_USDC"
PERP = "BTC_USDC_PERP"
D = Decimal


BASE_LIMITS = RiskLimits(
    max_account_leverage=D("3"),
    min_liq_distance_frac=D("0.30"),
    max_position_notional_usdc=D("0"),
    max_order_notional_usdc=D("10000"),
    max_open_orders=5,
    max_orders_per_minute=30,
    kill_switch_drawdown_frac=D("0.60"),
    block_on_stale=True,
    price_band_frac=D("0.05"),
    max_price_age_ms=15_000,
)


def limits(**overrides: Any) -> RiskLimits:
    return attrs.evolve(BASE_LIMITS, **overrides)


def intent(*, symbol: str = SPOT, side: str = "BUY", qty: Decimal = D("0.01"), limit: Decimal = D("50050"),
           reduce_only: bool = False, proj_leverage: Decimal = D("0"), liq: Decimal | None = None,
           n: int = 0) -> OrderIntent:
    intent_id = f"nanpin:{symbol}:swing:{n}"
    return OrderIntent(
        intent_id=intent_id, client_id=client_id_for(intent_id), symbol=symbol, side=side,
        reduce_only=reduce_only, order_type="limit_ioc", qty=qty, limit_price=limit, ref_price=D("50000"),
        notional=qty * D("50000"), level="61.8", swing_key="swing", entry_leverage=D("1"),
        projected=Projection(position_qty=qty, avg_entry=D("50000"), account_leverage=proj_leverage,
                             liq_price=liq, liq_distance=None),
        reason="test",
    )


def proposal(i: OrderIntent, at_ms: int = 0) -> Proposal:
    return Proposal(intent=i, decided_at_ms=at_ms, view_version=1)


def account(*, symbol: str = SPOT, equity: Decimal | None = D("10000"), position_qty: Decimal = D("0"),
            mmf: Decimal | None = None, open_orders: int = 0, reconciled: bool = True,
            as_of_ms: int = 0) -> AccountSnapshot:
    return AccountSnapshot(
        symbol=symbol, quote_available=equity or D("0"), quote_locked=D("0"), position_qty=position_qty,
        avg_entry=D("50000") if position_qty > 0 else D("0"), est_liq_price=None, mmf=mmf, imf=None,
        equity=equity, open_orders=open_orders, reconciled=reconciled, as_of_ms=as_of_ms,
    )


def price(value: Decimal = D("50000"), age_s: float = 0.0) -> Price:
    return Price(value=value, source="ws", age_s=age_s, cached=False, exchange_ms=None)


def stale(reason: str = "no last price received") -> Stale:
    return Stale(reason=reason, age_s=None)


def market_state(symbol: str = SPOT, *, last: Quote | None = None, mark: Quote | None = None) -> MarketState:
    return MarketState(symbol=symbol, last=last if last is not None else price(), mid=stale("no book"),
                       mark=mark if mark is not None else stale("no mark"), book=None, funding=None, candles=(),
                       clusters=(), burst=None)


def view(*states: MarketState, as_of_ms: int = 0, as_of_s: float = 0.0, version: int = 1) -> MarketView:
    return MarketView(version=version, as_of_ms=as_of_ms, as_of_s=as_of_s, markets=states,
                      quality=QualityStats(as_of_s=0.0, uptime_s=0.0, connected=True, reconnects=0, streams=()))


def decimals(lo: str, hi: str, places: int = 4) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=D(lo), max_value=D(hi), places=places, allow_nan=False, allow_infinity=False)


quotes: st.SearchStrategy[Quote] = st.one_of(
    decimals("1000", "100000", 2).map(price),
    st.text(min_size=1, max_size=20).map(stale),
)

intents: st.SearchStrategy[OrderIntent] = st.builds(
    intent,
    symbol=st.sampled_from([SPOT, PERP]),
    side=st.sampled_from(["BUY", "SELL"]),
    qty=decimals("0", "2", 4),
    limit=decimals("900", "110000", 2),
    reduce_only=st.booleans(),
    proj_leverage=decimals("0", "6", 2),
    liq=st.none() | decimals("0", "90000", 2),
)

accounts: st.SearchStrategy[AccountSnapshot | None] = st.none() | st.builds(
    account,
    symbol=st.sampled_from([SPOT, PERP]),
    equity=st.none() | decimals("-100", "50000", 2),
    position_qty=decimals("0", "3", 4),
    mmf=st.none() | decimals("0", "0.05", 4),
    open_orders=st.integers(0, 7),
    reconciled=st.booleans(),
)

limit_sets: st.SearchStrategy[RiskLimits] = st.builds(
    limits,
    max_account_leverage=decimals("0.5", "5", 2),
    min_liq_distance_frac=decimals("0", "0.9", 2),
    max_position_notional_usdc=decimals("0", "200000", 0),
    max_order_notional_usdc=decimals("0", "50000", 0),
    max_open_orders=st.integers(1, 6),
    max_orders_per_minute=st.integers(1, 10),
    block_on_stale=st.booleans(),
    price_band_frac=decimals("0.01", "0.5", 2),
)


@attrs.frozen(kw_only=True)
class Scenario:
    """One plausible check: an intent priced near a fresh quote, an account for its symbol, some limits."""

    intent: OrderIntent
    quote: Quote
    account: AccountSnapshot | None
    limits: RiskLimits


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Inputs that pass the basic checks often, so the cap checks decide (and approvals really happen)."""
    symbol = draw(st.sampled_from([SPOT, PERP]))
    p = draw(decimals("10000", "100000", 0))
    reduce_only = draw(st.booleans())
    side = "SELL" if reduce_only else "BUY"
    offset = draw(decimals("-0.012", "0.012", 3))
    equity = draw(decimals("1000", "100000", 0))
    step = D("0.0001")
    # Sizes relative to equity, so leverage lands on both sides of the caps rather than far above them.
    held = (equity * draw(decimals("0", "1.5", 3)) / p).quantize(step)
    qty = max(step, (equity * draw(decimals("0.001", "0.6", 3)) / p).quantize(step))
    acct = account(symbol=symbol, equity=equity, position_qty=held,
                   mmf=draw(st.none() | decimals("0.005", "0.05", 3)), open_orders=draw(st.integers(0, 6)))
    i = intent(symbol=symbol, side=side, reduce_only=reduce_only, qty=qty, limit=p * (1 + offset),
               proj_leverage=draw(decimals("0", "2.5", 2)), liq=draw(st.none() | decimals("0", "40000", 0)))
    lim = limits(
        max_account_leverage=draw(decimals("1", "5", 2)),
        min_liq_distance_frac=draw(decimals("0", "0.5", 2)),
        max_position_notional_usdc=draw(st.just(D(0)) | decimals("10000", "200000", 0)),
        max_order_notional_usdc=draw(st.just(D(0)) | decimals("5000", "50000", 0)),
        max_open_orders=draw(st.integers(1, 6)),
        price_band_frac=draw(decimals("0.01", "0.5", 2)),
    )
    return Scenario(intent=i, quote=price(p), account=acct, limits=lim)
