"""The WebSocket event vocabulary: one frozen, slotted, keyword-only attrs class per frame kind of section 5.

Rule 1: every time on an event is an integer number of **microseconds** since the Unix epoch (the wire mixes
µs integers, ms integers and naive ISO strings; ``engine.backpack.frames`` converts them all), except kline
bucket bounds, which are timezone-aware UTC ``datetime`` values because they name calendar buckets.
Rule 2: prices, sizes, fees and rates are ``Decimal`` exactly as received (padding kept, so the wire text can
be reproduced); order-book levels are ``(price, size)`` tuples in the order the frame listed them.
Rule 3: ``stream`` is the full stream name the frame arrived on; ``symbol`` is the market the payload names.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import TypeAlias

import attrs

__all__ = [
    "DEPTH_WINDOWS_MS",
    "KLINE_INTERVALS",
    "BalanceUpdate",
    "BookTicker",
    "Depth",
    "Kline",
    "Level",
    "Levels",
    "Liquidation",
    "MarkPrice",
    "OpenInterest",
    "OrderEventKind",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "PositionEventKind",
    "PositionUpdate",
    "Side",
    "Ticker",
    "TimeInForce",
    "Trade",
    "WsError",
    "WsEvent",
]

Level: TypeAlias = tuple[Decimal, Decimal]
Levels: TypeAlias = tuple[Level, ...]

#: Aggregation windows of ``depth.<window>.<symbol>`` streams, in ms (section 5.2).
DEPTH_WINDOWS_MS: frozenset[int] = frozenset({200, 600, 1000})

#: Kline intervals accepted in stream names and REST queries (section 3.5).
KLINE_INTERVALS: frozenset[str] = frozenset(
    {"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1month"}
)


class Side(enum.StrEnum):
    """Order or trade side; the values are the wire spelling in REST and WS."""

    BID = "Bid"
    ASK = "Ask"


class OrderType(enum.StrEnum):
    """Order type; values are the REST spelling (the WS order stream upper-cases them)."""

    LIMIT = "Limit"
    MARKET = "Market"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(enum.StrEnum):
    """Order status values of section 4.5 (``Triggered`` is known to the official SDK)."""

    NEW = "New"
    PARTIALLY_FILLED = "PartiallyFilled"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    EXPIRED = "Expired"
    TRIGGER_PENDING = "TriggerPending"
    TRIGGER_FAILED = "TriggerFailed"
    TRIGGERED = "Triggered"


class OrderEventKind(enum.StrEnum):
    """The ``e`` of an ``account.orderUpdate`` frame (section 5.4)."""

    ACCEPTED = "orderAccepted"
    FILL = "orderFill"
    CANCELLED = "orderCancelled"
    EXPIRED = "orderExpired"
    MODIFIED = "orderModified"
    TRIGGER_PLACED = "triggerPlaced"
    TRIGGER_FAILED = "triggerFailed"


class PositionEventKind(enum.StrEnum):
    """The ``e`` of an ``account.positionUpdate`` frame; SNAPSHOT is the on-subscribe form without ``e``."""

    SNAPSHOT = "snapshot"
    OPENED = "positionOpened"
    ADJUSTED = "positionAdjusted"
    CLOSED = "positionClosed"
    UPDATED = "positionUpdated"


@attrs.frozen(kw_only=True)
class Ticker:
    """``ticker.<symbol>``: 24 h rolling statistics, pushed every second (no engine time on the wire)."""

    stream: str
    symbol: str
    event_time_us: int
    first_price: Decimal
    last_price: Decimal
    high: Decimal
    low: Decimal
    base_volume: Decimal
    quote_volume: Decimal
    trades: int


@attrs.frozen(kw_only=True)
class BookTicker:
    """``bookTicker.<symbol>``: top of book; a side is None when that side of the book is empty."""

    stream: str
    symbol: str
    event_time_us: int
    engine_time_us: int
    update_id: int
    ask_price: Decimal | None
    ask_size: Decimal | None
    bid_price: Decimal | None
    bid_size: Decimal | None


@attrs.frozen(kw_only=True)
class Depth:
    """``depth[.<window>].<symbol>``: absolute sizes per level, size 0 deletes; ids U..u are inclusive."""

    stream: str
    symbol: str
    window_ms: int | None
    event_time_us: int
    engine_time_us: int
    first_update_id: int
    last_update_id: int
    bids: Levels
    asks: Levels


@attrs.frozen(kw_only=True)
class Trade:
    """``trade.<symbol>``: one public trade; ``buyer_is_maker`` True means the taker sold."""

    stream: str
    symbol: str
    event_time_us: int
    engine_time_us: int
    trade_id: int
    price: Decimal
    quantity: Decimal
    buyer_order_id: str
    seller_order_id: str
    buyer_is_maker: bool


@attrs.frozen(kw_only=True)
class Kline:
    """``kline.<interval>.<symbol>``: one candle; OHLC is None for a bucket without trades."""

    stream: str
    symbol: str
    interval: str
    event_time_us: int
    start: datetime
    end: datetime
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    volume: Decimal
    trades: int
    closed: bool


@attrs.frozen(kw_only=True)
class MarkPrice:
    """``markPrice.<symbol>``: funding fields are None for prediction markets."""

    stream: str
    symbol: str
    event_time_us: int
    engine_time_us: int | None
    mark_price: Decimal
    index_price: Decimal | None
    funding_rate: Decimal | None
    next_funding_time_us: int | None


@attrs.frozen(kw_only=True)
class OpenInterest:
    """``openInterest.<symbol>``: open interest in base units."""

    stream: str
    symbol: str
    event_time_us: int
    engine_time_us: int | None
    open_interest: Decimal


@attrs.frozen(kw_only=True)
class Liquidation:
    """``liquidation`` (or ``liquidation.<symbol>``): a liquidation order on some market."""

    stream: str
    symbol: str
    event_time_us: int
    engine_time_us: int | None
    side: Side
    price: Decimal
    quantity: Decimal


@attrs.frozen(kw_only=True)
class OrderUpdate:
    """``account.orderUpdate[.<symbol>]``: one order event; executed quantities are cumulative (``z``/``Z``).

    Fill fields (``trade_id``, ``fill_*``, ``is_maker``, ``fee*``) are set only on ``FILL``;
    ``expiry_reason`` only on ``EXPIRED``.
    """

    stream: str
    symbol: str
    kind: OrderEventKind
    event_time_us: int
    engine_time_us: int
    order_id: str
    client_id: int | None
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    status: OrderStatus
    quantity: Decimal | None
    quote_quantity: Decimal | None
    price: Decimal | None
    executed_quantity: Decimal
    executed_quote_quantity: Decimal
    trigger_price: Decimal | None = None
    trigger_by: str | None = None
    # A trigger quantity can be a percentage ("80%"), so it stays text.
    trigger_quantity: str | None = None
    take_profit_trigger_price: Decimal | None = None
    stop_loss_trigger_price: Decimal | None = None
    take_profit_limit_price: Decimal | None = None
    stop_loss_limit_price: Decimal | None = None
    take_profit_trigger_by: str | None = None
    stop_loss_trigger_by: str | None = None
    expiry_reason: str | None = None
    trade_id: int | None = None
    fill_quantity: Decimal | None = None
    fill_price: Decimal | None = None
    is_maker: bool | None = None
    fee: Decimal | None = None
    fee_symbol: str | None = None
    self_trade_prevention: str | None = None
    reduce_only: bool | None = None
    post_only: bool | None = None
    origin: str | None = None
    related_order_id: str | None = None
    strategy_id: str | None = None


@attrs.frozen(kw_only=True)
class PositionUpdate:
    """``account.positionUpdate[.<symbol>]``: the net position; ``net_quantity`` > 0 long, < 0 short."""

    stream: str
    symbol: str
    kind: PositionEventKind
    event_time_us: int | None
    engine_time_us: int | None
    position_id: str | None
    net_quantity: Decimal
    net_exposure_quantity: Decimal | None = None
    net_exposure_notional: Decimal | None = None
    break_even_price: Decimal | None = None
    entry_price: Decimal | None = None
    mark_price: Decimal | None = None
    imf: Decimal | None = None
    mmf: Decimal | None = None
    pnl_realized: Decimal | None = None
    pnl_unrealized: Decimal | None = None
    est_liquidation_price: Decimal | None = None


@attrs.frozen(kw_only=True)
class BalanceUpdate:
    """``account.balanceUpdate``: absolute available / locked / staked amounts of one asset."""

    stream: str
    event_time_us: int
    engine_time_us: int | None
    asset: str
    available: Decimal
    locked: Decimal
    staked: Decimal


@attrs.frozen(kw_only=True)
class WsError:
    """An error frame ``{"id":..,"error":{"code":..,"message":..}}`` (4002 parse, 4003 signature, 4006 stream,
    4008 depth window); the socket stays open, so it is an event, not an exception."""

    request_id: int | str | None
    code: int
    message: str


WsEvent: TypeAlias = (
    Ticker
    | BookTicker
    | Depth
    | Trade
    | Kline
    | MarkPrice
    | OpenInterest
    | Liquidation
    | OrderUpdate
    | PositionUpdate
    | BalanceUpdate
    | WsError
)
