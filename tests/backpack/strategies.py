"""Hypothesis strategies for every Backpack WS event and for wire-shaped JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from engine.backpack.events import (
    DEPTH_WINDOWS_MS,
    KLINE_INTERVALS,
    BalanceUpdate,
    BookTicker,
    Depth,
    Kline,
    Liquidation,
    MarkPrice,
    OpenInterest,
    OrderEventKind,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionEventKind,
    PositionUpdate,
    Side,
    Ticker,
    TimeInForce,
    Trade,
    WsError,
    WsEvent,
)

__all__ = [
    "decimals",
    "events",
    "json_values",
    "levels",
    "opt_decimals",
    "positive_decimals",
    "symbols",
]

symbols = st.one_of(
    st.from_regex(r"[A-Z0-9]{1,6}_(USDC|USDT)(_PERP)?", fullmatch=True),
    st.sampled_from(["AAPL.US_USDC_PERP", "kPEPE_USDC_PERP", "0G_USDC_PERP"]),
)
times_us = st.integers(0, 2**62)
ids = st.integers(0, 2**62)


def _scaled(digits: int, places: int) -> Decimal:
    return Decimal(digits).scaleb(-places)


decimals = st.builds(_scaled, st.integers(-(10**15), 10**15), st.integers(0, 12))
positive_decimals = st.builds(_scaled, st.integers(1, 10**12), st.integers(0, 8))
opt_decimals = st.none() | decimals
levels = st.lists(
    st.tuples(positive_decimals, positive_decimals | st.just(Decimal("0.00"))), max_size=12
).map(tuple)
names = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_%", min_size=1, max_size=12
)
opt_names = st.none() | names


@st.composite
def _ticker(draw: st.DrawFn) -> Ticker:
    s = draw(symbols)
    return Ticker(
        stream=f"ticker.{s}",
        symbol=s,
        event_time_us=draw(times_us),
        first_price=draw(decimals),
        last_price=draw(decimals),
        high=draw(decimals),
        low=draw(decimals),
        base_volume=draw(decimals),
        quote_volume=draw(decimals),
        trades=draw(ids),
    )


@st.composite
def _book_ticker(draw: st.DrawFn) -> BookTicker:
    s = draw(symbols)
    return BookTicker(
        stream=f"bookTicker.{s}",
        symbol=s,
        event_time_us=draw(times_us),
        engine_time_us=draw(times_us),
        update_id=draw(ids),
        ask_price=draw(opt_decimals),
        ask_size=draw(opt_decimals),
        bid_price=draw(opt_decimals),
        bid_size=draw(opt_decimals),
    )


@st.composite
def _depth(draw: st.DrawFn) -> Depth:
    s = draw(symbols)
    window = draw(st.none() | st.sampled_from(sorted(DEPTH_WINDOWS_MS)))
    first = draw(ids)
    return Depth(
        stream=f"depth.{s}" if window is None else f"depth.{window}ms.{s}",
        symbol=s,
        window_ms=window,
        event_time_us=draw(times_us),
        engine_time_us=draw(times_us),
        first_update_id=first,
        last_update_id=first + draw(st.integers(0, 50)),
        bids=draw(levels),
        asks=draw(levels),
    )


@st.composite
def _trade(draw: st.DrawFn) -> Trade:
    s = draw(symbols)
    return Trade(
        stream=f"trade.{s}",
        symbol=s,
        event_time_us=draw(times_us),
        engine_time_us=draw(times_us),
        trade_id=draw(ids),
        price=draw(positive_decimals),
        quantity=draw(positive_decimals),
        buyer_order_id=str(draw(ids)),
        seller_order_id=str(draw(ids)),
        buyer_is_maker=draw(st.booleans()),
    )


_kline_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def _kline(draw: st.DrawFn) -> Kline:
    s = draw(symbols)
    interval = draw(st.sampled_from(sorted(KLINE_INTERVALS)))
    return Kline(
        stream=f"kline.{interval}.{s}",
        symbol=s,
        interval=interval,
        event_time_us=draw(times_us),
        start=draw(_kline_times),
        end=draw(_kline_times),
        open=draw(opt_decimals),
        high=draw(opt_decimals),
        low=draw(opt_decimals),
        close=draw(opt_decimals),
        volume=draw(decimals),
        trades=draw(ids),
        closed=draw(st.booleans()),
    )


@st.composite
def _mark_price(draw: st.DrawFn) -> MarkPrice:
    s = draw(symbols)
    next_ms = draw(st.none() | st.integers(0, 2**50))
    return MarkPrice(
        stream=f"markPrice.{s}",
        symbol=s,
        event_time_us=draw(times_us),
        engine_time_us=draw(st.none() | times_us),
        mark_price=draw(decimals),
        index_price=draw(opt_decimals),
        funding_rate=draw(opt_decimals),
        next_funding_time_us=None if next_ms is None else next_ms * 1000,
    )


@st.composite
def _open_interest(draw: st.DrawFn) -> OpenInterest:
    s = draw(symbols)
    return OpenInterest(
        stream=f"openInterest.{s}",
        symbol=s,
        event_time_us=draw(times_us),
        engine_time_us=draw(st.none() | times_us),
        open_interest=draw(decimals),
    )


@st.composite
def _liquidation(draw: st.DrawFn) -> Liquidation:
    s = draw(symbols)
    return Liquidation(
        stream=draw(st.sampled_from(["liquidation", f"liquidation.{s}"])),
        symbol=s,
        event_time_us=draw(times_us),
        engine_time_us=draw(st.none() | times_us),
        side=draw(st.sampled_from(Side)),
        price=draw(positive_decimals),
        quantity=draw(positive_decimals),
    )


@st.composite
def _order_update(draw: st.DrawFn) -> OrderUpdate:
    s = draw(symbols)
    kind = draw(st.sampled_from(OrderEventKind))
    fill = kind is OrderEventKind.FILL
    return OrderUpdate(
        stream=draw(st.sampled_from(["account.orderUpdate", f"account.orderUpdate.{s}"])),
        symbol=s,
        kind=kind,
        event_time_us=draw(times_us),
        engine_time_us=draw(times_us),
        order_id=str(draw(ids)),
        client_id=draw(st.none() | st.integers(0, 2**32 - 1)),
        side=draw(st.sampled_from(Side)),
        order_type=draw(st.sampled_from(OrderType)),
        time_in_force=draw(st.sampled_from(TimeInForce)),
        status=draw(st.sampled_from(OrderStatus)),
        quantity=draw(opt_decimals),
        quote_quantity=draw(opt_decimals),
        price=draw(opt_decimals),
        executed_quantity=draw(decimals),
        executed_quote_quantity=draw(decimals),
        trigger_price=draw(opt_decimals),
        trigger_by=draw(opt_names),
        trigger_quantity=draw(opt_names),
        take_profit_trigger_price=draw(opt_decimals),
        stop_loss_trigger_price=draw(opt_decimals),
        take_profit_limit_price=draw(opt_decimals),
        stop_loss_limit_price=draw(opt_decimals),
        take_profit_trigger_by=draw(opt_names),
        stop_loss_trigger_by=draw(opt_names),
        expiry_reason=draw(names) if kind is OrderEventKind.EXPIRED else None,
        trade_id=draw(ids) if fill else None,
        fill_quantity=draw(positive_decimals) if fill else None,
        fill_price=draw(positive_decimals) if fill else None,
        is_maker=draw(st.booleans()) if fill else None,
        fee=draw(decimals) if fill else None,
        fee_symbol=draw(names) if fill else None,
        self_trade_prevention=draw(opt_names),
        reduce_only=draw(st.none() | st.booleans()),
        post_only=draw(st.none() | st.booleans()),
        origin=draw(opt_names),
        related_order_id=draw(st.none() | ids.map(str)),
        strategy_id=draw(st.none() | ids.map(str)),
    )


@st.composite
def _position_update(draw: st.DrawFn) -> PositionUpdate:
    s = draw(symbols)
    return PositionUpdate(
        stream=draw(st.sampled_from(["account.positionUpdate", f"account.positionUpdate.{s}"])),
        symbol=s,
        kind=draw(st.sampled_from(PositionEventKind)),
        event_time_us=draw(st.none() | times_us),
        engine_time_us=draw(st.none() | times_us),
        position_id=draw(st.none() | ids.map(str)),
        net_quantity=draw(decimals),
        net_exposure_quantity=draw(opt_decimals),
        net_exposure_notional=draw(opt_decimals),
        break_even_price=draw(opt_decimals),
        entry_price=draw(opt_decimals),
        mark_price=draw(opt_decimals),
        imf=draw(opt_decimals),
        mmf=draw(opt_decimals),
        pnl_realized=draw(opt_decimals),
        pnl_unrealized=draw(opt_decimals),
        est_liquidation_price=draw(opt_decimals),
    )


@st.composite
def _balance_update(draw: st.DrawFn) -> BalanceUpdate:
    return BalanceUpdate(
        stream="account.balanceUpdate",
        event_time_us=draw(times_us),
        engine_time_us=draw(st.none() | times_us),
        asset=draw(names),
        available=draw(decimals),
        locked=draw(decimals),
        staked=draw(decimals),
    )


_ws_error = st.builds(
    WsError,
    request_id=st.none() | st.integers(0, 2**31) | names,
    code=st.sampled_from([4002, 4003, 4006, 4008]) | st.integers(0, 9999),
    message=st.text(st.characters(codec="utf-8"), max_size=40),
)

#: One strategy per event class, so tests can cover each type explicitly.
events: dict[type[Any], st.SearchStrategy[WsEvent]] = {
    Ticker: _ticker(),
    BookTicker: _book_ticker(),
    Depth: _depth(),
    Trade: _trade(),
    Kline: _kline(),
    MarkPrice: _mark_price(),
    OpenInterest: _open_interest(),
    Liquidation: _liquidation(),
    OrderUpdate: _order_update(),
    PositionUpdate: _position_update(),
    BalanceUpdate: _balance_update(),
    WsError: _ws_error,
}

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["NaN", "Infinity", "-0", "1e99999", "1_000", " 1", "", "12", "0.5"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)
