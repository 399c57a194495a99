"""Decode Backpack REST response bodies (sections 3-4) into typed values, and error bodies (6.1) into errors.

Rule 1: every decoder is total: it returns its typed value or raises ``RemoteProtocolError`` naming the path and
the field (``/api/v1/depth: bids[3][0]: not a decimal``). ``decode_error`` returns an ``ApiError`` subclass
for any error body, JSON or plain text, and raises ``RemoteProtocolError`` only for a body that is neither.
Rule 2: times become integer microseconds (REST mixes ms integers, µs integers and naive UTC strings), except
candle and funding-interval bounds, which stay UTC ``datetime`` values (they name calendar buckets).
Rule 3: depth levels keep the wire order: both sides ascending, so the best bid is ``bids[-1]``.
Unknown fields are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

import attrs

from engine.backpack.events import Levels, OrderStatus, OrderType, Side, TimeInForce
from engine.backpack.frames import MISSING as _MISSING
from engine.backpack.frames import (
    FieldError,
    parse_json,
    to_bool,
    to_decimal,
    to_enum,
    to_id,
    to_int,
    to_naive_utc,
    to_opt_bool,
    to_opt_decimal,
    to_opt_id,
    to_opt_int,
    to_opt_str,
    to_str,
)
from engine.errors import (
    ApiError,
    LocalProtocolError,
    NotFound,
    OrderRejected,
    RateLimited,
    RemoteProtocolError,
    ServerUnavailable,
    SignatureRejected,
)

__all__ = [
    "Balance",
    "BatchItemError",
    "Candle",
    "Collateral",
    "CollateralAsset",
    "DepthSnapshot",
    "Fill",
    "FundingRate",
    "MarginFunction",
    "Market",
    "MarketFilters",
    "MarkPriceInfo",
    "OpenInterestInfo",
    "Order",
    "Position",
    "PublicTrade",
    "Response",
    "TickerStats",
    "decode_balances",
    "decode_batch_orders",
    "decode_collateral",
    "decode_depth",
    "decode_error",
    "decode_fills",
    "decode_funding_rates",
    "decode_klines",
    "decode_mark_prices",
    "decode_market",
    "decode_markets",
    "decode_open_interest",
    "decode_order",
    "decode_orders",
    "decode_ping",
    "decode_positions",
    "decode_response",
    "decode_ticker",
    "decode_tickers",
    "decode_time",
    "decode_trades",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_T = TypeVar("_T")


# --- value classes ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MarginFunction:
    """A perp's ``imfFunction``/``mmfFunction``: ``{"type":"sqrt","base":..,"factor":..}``."""

    type: str
    base: Decimal
    factor: Decimal


@attrs.frozen(kw_only=True)
class MarketFilters:
    """Order validity rules of one market. There is no minimum-notional filter on Backpack."""

    tick_size: Decimal
    min_price: Decimal | None
    max_price: Decimal | None
    step_size: Decimal
    min_quantity: Decimal | None
    max_quantity: Decimal | None
    # Limit-price band relative to the last active price, and the market-order walk limit.
    max_multiplier: Decimal | None = None
    min_multiplier: Decimal | None = None
    max_impact_multiplier: Decimal | None = None
    min_impact_multiplier: Decimal | None = None


@attrs.frozen(kw_only=True)
class Market:
    """One row of ``/api/v1/markets`` (or ``/market``)."""

    symbol: str
    base_symbol: str
    quote_symbol: str
    market_type: str
    order_book_state: str
    visible: bool | None
    created_at: datetime | None
    filters: MarketFilters
    funding_interval_us: int | None
    funding_rate_upper_bound_bps: Decimal | None
    funding_rate_lower_bound_bps: Decimal | None
    open_interest_limit: Decimal | None
    imf_function: MarginFunction | None
    mmf_function: MarginFunction | None


@attrs.frozen(kw_only=True)
class TickerStats:
    """``/api/v1/ticker``: 24 h statistics; ``price_change_percent`` is a fraction, None when "N/A"."""

    symbol: str
    first_price: Decimal | None
    last_price: Decimal
    high: Decimal | None
    low: Decimal | None
    price_change: Decimal | None
    price_change_percent: Decimal | None
    base_volume: Decimal
    quote_volume: Decimal
    trades: int


@attrs.frozen(kw_only=True)
class DepthSnapshot:
    """``/api/v1/depth``: both sides ascending as on the wire (best ask ``asks[0]``, best bid ``bids[-1]``)."""

    last_update_id: int
    timestamp_us: int
    bids: Levels
    asks: Levels


@attrs.frozen(kw_only=True)
class Candle:
    """One ``/api/v1/klines`` row; OHLC is None for a bucket without trades."""

    start: datetime
    end: datetime | None
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    volume: Decimal
    quote_volume: Decimal | None
    trades: int


@attrs.frozen(kw_only=True)
class PublicTrade:
    """One ``/api/v1/trades`` row; ``buyer_is_maker`` False means the taker bought."""

    trade_id: int
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal | None
    timestamp_us: int
    buyer_is_maker: bool


@attrs.frozen(kw_only=True)
class MarkPriceInfo:
    symbol: str
    mark_price: Decimal
    index_price: Decimal | None
    funding_rate: Decimal | None
    next_funding_time_us: int | None


@attrs.frozen(kw_only=True)
class OpenInterestInfo:
    symbol: str
    open_interest: Decimal | None
    timestamp_us: int | None


@attrs.frozen(kw_only=True)
class FundingRate:
    """One ``/api/v1/fundingRates`` row (newest first); the rate is a fraction per interval."""

    symbol: str
    funding_rate: Decimal
    interval_end: datetime


@attrs.frozen(kw_only=True)
class Balance:
    asset: str
    available: Decimal
    locked: Decimal
    staked: Decimal


@attrs.frozen(kw_only=True)
class CollateralAsset:
    symbol: str
    asset_mark_price: Decimal | None
    total_quantity: Decimal
    available_quantity: Decimal | None
    open_order_quantity: Decimal | None
    lend_quantity: Decimal | None
    balance_notional: Decimal | None
    collateral_weight: Decimal | None
    collateral_value: Decimal | None


@attrs.frozen(kw_only=True)
class Collateral:
    """``/api/v1/capital/collateral``: account margin; ``margin_fraction`` is None without exposure."""

    assets_value: Decimal
    liabilities_value: Decimal
    borrow_liability: Decimal | None
    net_equity: Decimal
    net_equity_available: Decimal
    net_equity_locked: Decimal
    net_exposure_futures: Decimal | None
    imf: Decimal | None
    mmf: Decimal | None
    margin_fraction: Decimal | None
    pnl_unrealized: Decimal | None
    unsettled_equity: Decimal | None
    collateral: tuple[CollateralAsset, ...]


@attrs.frozen(kw_only=True)
class Position:
    """One ``/api/v1/position`` row; ``net_quantity`` > 0 long, < 0 short."""

    symbol: str
    position_id: str | None
    net_quantity: Decimal
    net_cost: Decimal | None
    entry_price: Decimal | None
    break_even_price: Decimal | None
    mark_price: Decimal | None
    est_liquidation_price: Decimal | None
    net_exposure_quantity: Decimal | None
    net_exposure_notional: Decimal | None
    pnl_realized: Decimal | None
    pnl_unrealized: Decimal | None
    cumulative_funding_payment: Decimal | None
    imf: Decimal | None
    mmf: Decimal | None


@attrs.frozen(kw_only=True)
class Order:
    """The order shape of ``/api/v1/order(s)`` and ``/wapi/v1/history/orders`` (history adds expiry reason)."""

    order_id: str
    client_id: int | None
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce | None
    status: OrderStatus
    quantity: Decimal | None
    quote_quantity: Decimal | None
    price: Decimal | None
    executed_quantity: Decimal
    executed_quote_quantity: Decimal
    created_at_us: int
    post_only: bool | None = None
    reduce_only: bool | None = None
    self_trade_prevention: str | None = None
    trigger_price: Decimal | None = None
    trigger_quantity: str | None = None
    trigger_by: str | None = None
    expiry_reason: str | None = None
    related_order_id: str | None = None
    strategy_id: str | None = None
    system_order_type: str | None = None


@attrs.frozen(kw_only=True)
class BatchItemError:
    """A failed item of a batch order response: ``{"code","message","operation":"Err"}``."""

    code: str
    message: str


@attrs.frozen(kw_only=True)
class Fill:
    """One ``/wapi/v1/history/fills`` row (``client_id`` is text there)."""

    trade_id: int | None
    order_id: str
    client_id: str | None
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_symbol: str
    is_maker: bool
    timestamp_us: int
    system_order_type: str | None


Response: TypeAlias = (
    Market
    | tuple[Market, ...]
    | TickerStats
    | tuple[TickerStats, ...]
    | DepthSnapshot
    | tuple[Candle, ...]
    | tuple[PublicTrade, ...]
    | tuple[MarkPriceInfo, ...]
    | tuple[OpenInterestInfo, ...]
    | tuple[FundingRate, ...]
    | tuple[Balance, ...]
    | Collateral
    | tuple[Position, ...]
    | Order
    | tuple[Order, ...]
    | tuple[Order | BatchItemError, ...]
    | tuple[Fill, ...]
    | str
    | int
)


# --- reading helpers --------------------------------------------------------------------------------------


class _Row:
    """A JSON object with a location prefix for error messages."""

    __slots__ = ("d", "at")

    def __init__(self, value: Any, at: str) -> None:
        if value.__class__ is not dict:
            raise FieldError(at or "body", f"expected an object, got {type(value).__name__}")
        self.d: dict[str, Any] = value
        self.at = at

    def _k(self, key: str) -> str:
        return f"{self.at}.{key}" if self.at else key

    def get(self, key: str) -> Any:
        return self.d.get(key, _MISSING)

    def dec(self, key: str) -> Decimal:
        return to_decimal(self.get(key), self._k(key))

    def odec(self, key: str) -> Decimal | None:
        return to_opt_decimal(self.get(key), self._k(key))

    def num(self, key: str) -> int:
        return to_int(self.get(key), self._k(key))

    def onum(self, key: str) -> int | None:
        return to_opt_int(self.get(key), self._k(key))

    def text(self, key: str) -> str:
        return to_str(self.get(key), self._k(key))

    def otext(self, key: str) -> str | None:
        return to_opt_str(self.get(key), self._k(key))

    def ident(self, key: str) -> str:
        return to_id(self.get(key), self._k(key))

    def oident(self, key: str) -> str | None:
        return to_opt_id(self.get(key), self._k(key))

    def flag(self, key: str) -> bool:
        return to_bool(self.get(key), self._k(key))

    def oflag(self, key: str) -> bool | None:
        return to_opt_bool(self.get(key), self._k(key))

    def time(self, key: str) -> datetime:
        return to_naive_utc(self.get(key), self._k(key))

    def otime(self, key: str) -> datetime | None:
        value = self.get(key)
        return None if value is None or value is _MISSING else to_naive_utc(value, self._k(key))

    def enum(self, cls: Callable[[Any], _T], key: str) -> _T:
        return to_enum(cls, self.get(key), self._k(key))

    def row(self, key: str) -> _Row:
        return _Row(self.get(key), self._k(key))

    def orow(self, key: str) -> _Row | None:
        value = self.get(key)
        return None if value is None or value is _MISSING else _Row(value, self._k(key))

    def us_from_ms(self, key: str) -> int:
        return self.num(key) * 1000

    def ous_from_ms(self, key: str) -> int | None:
        value = self.onum(key)
        return None if value is None else value * 1000


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_US


def _rows(value: Any, at: str) -> list[_Row]:
    if value.__class__ is not list:
        raise FieldError(at or "body", f"expected an array, got {type(value).__name__}")
    return [_Row(item, f"{at}[{i}]") for i, item in enumerate(value)]


def _levels(value: Any, at: str) -> Levels:
    if value.__class__ is not list:
        raise FieldError(at, f"expected an array of [price, size], got {type(value).__name__}")
    out = []
    for i, level in enumerate(value):
        if level.__class__ is not list or len(level) != 2:
            raise FieldError(f"{at}[{i}]", "expected [price, size]")
        out.append((to_decimal(level[0], f"{at}[{i}][0]"), to_decimal(level[1], f"{at}[{i}][1]")))
    return tuple(out)


def _run(path: str, body: str | bytes, build: Callable[[Any], _T]) -> _T:
    value = parse_json(body, path)
    try:
        return build(value)
    except FieldError as exc:
        raise RemoteProtocolError(f"{path}: {exc.field}: {exc.reason}") from None


# --- builders (value -> typed), one per response shape ----------------------------------------------------


def _margin_function(r: _Row | None) -> MarginFunction | None:
    if r is None:
        return None
    return MarginFunction(type=r.text("type"), base=r.dec("base"), factor=r.dec("factor"))


def _market(r: _Row) -> Market:
    filters = r.row("filters")
    price = filters.row("price")
    qty = filters.row("quantity")
    # Quantisation divides by these; a zero or negative grid is not a market we can trade.
    if not price.dec("tickSize") > 0:
        raise FieldError("filters.price.tickSize", "must be positive")
    if not qty.dec("stepSize") > 0:
        raise FieldError("filters.quantity.stepSize", "must be positive")
    interval = r.onum("fundingInterval")
    return Market(
        symbol=r.text("symbol"),
        base_symbol=r.text("baseSymbol"),
        quote_symbol=r.text("quoteSymbol"),
        market_type=r.text("marketType"),
        order_book_state=r.text("orderBookState"),
        visible=r.oflag("visible"),
        created_at=r.otime("createdAt"),
        filters=MarketFilters(
            tick_size=price.dec("tickSize"),
            min_price=price.odec("minPrice"),
            max_price=price.odec("maxPrice"),
            step_size=qty.dec("stepSize"),
            min_quantity=qty.odec("minQuantity"),
            max_quantity=qty.odec("maxQuantity"),
            max_multiplier=price.odec("maxMultiplier"),
            min_multiplier=price.odec("minMultiplier"),
            max_impact_multiplier=price.odec("maxImpactMultiplier"),
            min_impact_multiplier=price.odec("minImpactMultiplier"),
        ),
        funding_interval_us=None if interval is None else interval * 1000,
        funding_rate_upper_bound_bps=r.odec("fundingRateUpperBound"),
        funding_rate_lower_bound_bps=r.odec("fundingRateLowerBound"),
        open_interest_limit=r.odec("openInterestLimit"),
        imf_function=_margin_function(r.orow("imfFunction")),
        mmf_function=_margin_function(r.orow("mmfFunction")),
    )


def _ticker(r: _Row) -> TickerStats:
    pct = r.get("priceChangePercent")
    # ccxt has a case with "N/A" here: not a number, but not a reason to drop the whole ticker.
    percent = None if pct == "N/A" else r.odec("priceChangePercent")
    return TickerStats(
        symbol=r.text("symbol"),
        first_price=r.odec("firstPrice"),
        last_price=r.dec("lastPrice"),
        high=r.odec("high"),
        low=r.odec("low"),
        price_change=r.odec("priceChange"),
        price_change_percent=percent,
        base_volume=r.dec("volume"),
        quote_volume=r.dec("quoteVolume"),
        trades=r.num("trades"),
    )


def _depth(value: Any) -> DepthSnapshot:
    r = _Row(value, "")
    return DepthSnapshot(
        last_update_id=r.num("lastUpdateId"),
        timestamp_us=r.num("timestamp"),
        bids=_levels(r.get("bids"), "bids"),
        asks=_levels(r.get("asks"), "asks"),
    )


def _candle(r: _Row) -> Candle:
    return Candle(
        start=r.time("start"),
        end=r.otime("end"),
        open=r.odec("open"),
        high=r.odec("high"),
        low=r.odec("low"),
        close=r.odec("close"),
        volume=r.dec("volume"),
        quote_volume=r.odec("quoteVolume"),
        trades=r.num("trades"),
    )


def _public_trade(r: _Row) -> PublicTrade:
    return PublicTrade(
        trade_id=r.num("id"),
        price=r.dec("price"),
        quantity=r.dec("quantity"),
        quote_quantity=r.odec("quoteQuantity"),
        timestamp_us=r.us_from_ms("timestamp"),
        buyer_is_maker=r.flag("isBuyerMaker"),
    )


def _mark_price(r: _Row) -> MarkPriceInfo:
    return MarkPriceInfo(
        symbol=r.text("symbol"),
        mark_price=r.dec("markPrice"),
        index_price=r.odec("indexPrice"),
        funding_rate=r.odec("fundingRate"),
        next_funding_time_us=r.ous_from_ms("nextFundingTimestamp"),
    )


def _open_interest(r: _Row) -> OpenInterestInfo:
    return OpenInterestInfo(
        symbol=r.text("symbol"),
        open_interest=r.odec("openInterest"),
        timestamp_us=r.ous_from_ms("timestamp"),
    )


def _funding_rate(r: _Row) -> FundingRate:
    return FundingRate(
        symbol=r.text("symbol"),
        funding_rate=r.dec("fundingRate"),
        interval_end=r.time("intervalEndTimestamp"),
    )


def _balances(value: Any) -> tuple[Balance, ...]:
    r = _Row(value, "")
    out = []
    for asset in sorted(r.d):
        b = r.row(asset)
        out.append(
            Balance(asset=asset, available=b.dec("available"), locked=b.dec("locked"), staked=b.dec("staked"))
        )
    return tuple(out)


def _collateral(value: Any) -> Collateral:
    r = _Row(value, "")
    assets = tuple(
        CollateralAsset(
            symbol=a.text("symbol"),
            asset_mark_price=a.odec("assetMarkPrice"),
            total_quantity=a.dec("totalQuantity"),
            available_quantity=a.odec("availableQuantity"),
            open_order_quantity=a.odec("openOrderQuantity"),
            lend_quantity=a.odec("lendQuantity"),
            balance_notional=a.odec("balanceNotional"),
            collateral_weight=a.odec("collateralWeight"),
            collateral_value=a.odec("collateralValue"),
        )
        for a in _rows(r.get("collateral"), "collateral")
    )
    return Collateral(
        assets_value=r.dec("assetsValue"),
        liabilities_value=r.dec("liabilitiesValue"),
        borrow_liability=r.odec("borrowLiability"),
        net_equity=r.dec("netEquity"),
        net_equity_available=r.dec("netEquityAvailable"),
        net_equity_locked=r.dec("netEquityLocked"),
        net_exposure_futures=r.odec("netExposureFutures"),
        imf=r.odec("imf"),
        mmf=r.odec("mmf"),
        margin_fraction=r.odec("marginFraction"),
        pnl_unrealized=r.odec("pnlUnrealized"),
        unsettled_equity=r.odec("unsettledEquity"),
        collateral=assets,
    )


def _position(r: _Row) -> Position:
    return Position(
        symbol=r.text("symbol"),
        position_id=r.oident("positionId"),
        net_quantity=r.dec("netQuantity"),
        net_cost=r.odec("netCost"),
        entry_price=r.odec("entryPrice"),
        break_even_price=r.odec("breakEvenPrice"),
        mark_price=r.odec("markPrice"),
        est_liquidation_price=r.odec("estLiquidationPrice"),
        net_exposure_quantity=r.odec("netExposureQuantity"),
        net_exposure_notional=r.odec("netExposureNotional"),
        pnl_realized=r.odec("pnlRealized"),
        pnl_unrealized=r.odec("pnlUnrealized"),
        cumulative_funding_payment=r.odec("cumulativeFundingPayment"),
        imf=r.odec("imf"),
        mmf=r.odec("mmf"),
    )


def _created_at_us(r: _Row) -> int:
    value = r.get("createdAt")
    # Live order endpoints send integer ms; history sends a naive UTC datetime string.
    if value.__class__ is str and "-" in value:
        return _us(r.time("createdAt"))
    return r.us_from_ms("createdAt")


def _order(r: _Row) -> Order:
    tif = r.get("timeInForce")
    return Order(
        order_id=r.ident("id"),
        client_id=r.onum("clientId"),
        symbol=r.text("symbol"),
        side=r.enum(Side, "side"),
        order_type=r.enum(OrderType, "orderType"),
        time_in_force=None if tif is None or tif is _MISSING else r.enum(TimeInForce, "timeInForce"),
        status=r.enum(OrderStatus, "status"),
        quantity=r.odec("quantity"),
        quote_quantity=r.odec("quoteQuantity"),
        price=r.odec("price"),
        executed_quantity=r.dec("executedQuantity"),
        executed_quote_quantity=r.dec("executedQuoteQuantity"),
        created_at_us=_created_at_us(r),
        post_only=r.oflag("postOnly"),
        reduce_only=r.oflag("reduceOnly"),
        self_trade_prevention=r.otext("selfTradePrevention"),
        trigger_price=r.odec("triggerPrice"),
        trigger_quantity=r.otext("triggerQuantity"),
        trigger_by=r.otext("triggerBy"),
        expiry_reason=r.otext("expiryReason"),
        related_order_id=r.oident("relatedOrderId"),
        strategy_id=r.oident("strategyId"),
        system_order_type=r.otext("systemOrderType"),
    )


def _batch_item(r: _Row) -> Order | BatchItemError:
    if r.get("operation") == "Err" or ("code" in r.d and "id" not in r.d):
        return BatchItemError(code=r.text("code"), message=r.otext("message") or "")
    return _order(r)


def _fill(r: _Row) -> Fill:
    return Fill(
        trade_id=r.onum("tradeId"),
        order_id=r.ident("orderId"),
        client_id=r.oident("clientId"),
        symbol=r.text("symbol"),
        side=r.enum(Side, "side"),
        price=r.dec("price"),
        quantity=r.dec("quantity"),
        fee=r.dec("fee"),
        fee_symbol=r.text("feeSymbol"),
        is_maker=r.flag("isMaker"),
        timestamp_us=_us(r.time("timestamp")),
        system_order_type=r.otext("systemOrderType"),
    )


def _each(build: Callable[[_Row], _T]) -> Callable[[Any], tuple[_T, ...]]:
    return lambda value: tuple(build(r) for r in _rows(value, ""))


def _one(build: Callable[[_Row], _T]) -> Callable[[Any], _T]:
    return lambda value: build(_Row(value, ""))


# --- public per-endpoint decoders -------------------------------------------------------------------------


def decode_markets(body: str | bytes) -> tuple[Market, ...]:
    return _run("/api/v1/markets", body, _each(_market))


def decode_market(body: str | bytes) -> Market:
    return _run("/api/v1/market", body, _one(_market))


def decode_ticker(body: str | bytes) -> TickerStats:
    return _run("/api/v1/ticker", body, _one(_ticker))


def decode_tickers(body: str | bytes) -> tuple[TickerStats, ...]:
    return _run("/api/v1/tickers", body, _each(_ticker))


def decode_depth(body: str | bytes) -> DepthSnapshot:
    return _run("/api/v1/depth", body, _depth)


def decode_klines(body: str | bytes) -> tuple[Candle, ...]:
    return _run("/api/v1/klines", body, _each(_candle))


def decode_trades(body: str | bytes) -> tuple[PublicTrade, ...]:
    return _run("/api/v1/trades", body, _each(_public_trade))


def decode_mark_prices(body: str | bytes) -> tuple[MarkPriceInfo, ...]:
    return _run("/api/v1/markPrices", body, _each(_mark_price))


def decode_open_interest(body: str | bytes) -> tuple[OpenInterestInfo, ...]:
    return _run("/api/v1/openInterest", body, _each(_open_interest))


def decode_funding_rates(body: str | bytes) -> tuple[FundingRate, ...]:
    return _run("/api/v1/fundingRates", body, _each(_funding_rate))


def decode_balances(body: str | bytes) -> tuple[Balance, ...]:
    """``/api/v1/capital``: one Balance per asset, sorted by asset."""
    return _run("/api/v1/capital", body, _balances)


def decode_collateral(body: str | bytes) -> Collateral:
    return _run("/api/v1/capital/collateral", body, _collateral)


def decode_positions(body: str | bytes) -> tuple[Position, ...]:
    return _run("/api/v1/position", body, _each(_position))


def decode_order(body: str | bytes) -> Order:
    """``/api/v1/order`` (POST execute, GET query, DELETE cancel all return this shape)."""
    return _run("/api/v1/order", body, _one(_order))


def decode_orders(body: str | bytes, path: str = "/api/v1/orders") -> tuple[Order, ...]:
    """Open orders, cancel-all results and order history."""
    return _run(path, body, _each(_order))


def decode_batch_orders(body: str | bytes) -> tuple[Order | BatchItemError, ...]:
    """``POST /api/v1/orders``: one order or error per submitted order, in order."""
    return _run("/api/v1/orders", body, _each(_batch_item))


def decode_fills(body: str | bytes) -> tuple[Fill, ...]:
    return _run("/wapi/v1/history/fills", body, _each(_fill))


def _text(path: str, body: str | bytes) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"{path}: body is not UTF-8 text") from exc


def decode_ping(body: str | bytes) -> str:
    """``/api/v1/ping`` answers the plain text ``pong``."""
    text = _text("/api/v1/ping", body).strip()
    if text != "pong":
        raise RemoteProtocolError(f"/api/v1/ping: expected 'pong', got {text[:40]!r}")
    return text


def decode_time(body: str | bytes) -> int:
    """``/api/v1/time`` answers plain-text integer milliseconds; returned as microseconds."""
    text = _text("/api/v1/time", body).strip()
    if not (0 < len(text) <= 16 and text.isascii() and text.isdigit()):
        raise RemoteProtocolError(f"/api/v1/time: expected integer milliseconds, got {text[:40]!r}")
    return int(text) * 1000


_BY_PATH: dict[tuple[str, str], Callable[[str | bytes], Response]] = {
    ("GET", "/api/v1/markets"): decode_markets,
    ("GET", "/api/v1/market"): decode_market,
    ("GET", "/api/v1/ticker"): decode_ticker,
    ("GET", "/api/v1/tickers"): decode_tickers,
    ("GET", "/api/v1/depth"): decode_depth,
    ("GET", "/api/v1/klines"): decode_klines,
    ("GET", "/api/v1/trades"): decode_trades,
    ("GET", "/api/v1/trades/history"): decode_trades,
    ("GET", "/api/v1/markPrices"): decode_mark_prices,
    ("GET", "/api/v1/openInterest"): decode_open_interest,
    ("GET", "/api/v1/fundingRates"): decode_funding_rates,
    ("GET", "/api/v1/capital"): decode_balances,
    ("GET", "/api/v1/capital/collateral"): decode_collateral,
    ("GET", "/api/v1/position"): decode_positions,
    ("GET", "/api/v1/order"): decode_order,
    ("POST", "/api/v1/order"): decode_order,
    ("DELETE", "/api/v1/order"): decode_order,
    ("GET", "/api/v1/orders"): decode_orders,
    ("DELETE", "/api/v1/orders"): lambda body: decode_orders(body, "/api/v1/orders"),
    ("POST", "/api/v1/orders"): decode_batch_orders,
    ("GET", "/wapi/v1/history/orders"): lambda body: decode_orders(body, "/wapi/v1/history/orders"),
    ("GET", "/wapi/v1/history/fills"): decode_fills,
    ("GET", "/api/v1/ping"): decode_ping,
    ("GET", "/api/v1/time"): decode_time,
}


def decode_response(path: str, body: str | bytes, *, method: str = "GET") -> Response:
    """Decode a successful response body of ``method path`` (any query string is ignored)."""
    bare = path.partition("?")[0].rstrip("/") or "/"
    decoder = _BY_PATH.get((method.upper(), bare))
    if decoder is None:
        raise LocalProtocolError(f"no response decoder for {method.upper()} {bare}")
    return decoder(body)


# --- error bodies -----------------------------------------------------------------------------------------

_ORDER_REJECTION_CODES = frozenset(
    {
        "INVALID_ORDER",
        "INSUFFICIENT_FUNDS",
        "INSUFFICIENT_MARGIN",
        "INSUFFICIENT_SUPPLY",
        "INVALID_PRICE",
        "INVALID_QUANTITY",
        "ORDER_LIMIT",
        "POSITION_LIMIT",
        "MAX_LEVERAGE_REACHED",
        "TRADING_PAUSED",
        "ACCOUNT_LIQUIDATING",
        "BORROW_LIMIT",
        "BORROW_REQUIRES_LEND_REDEEM",
        "PRECONDITION_FAILED",
    }
)
_AUTH_CODES = frozenset({"INVALID_SIGNATURE", "UNAUTHORIZED", "FORBIDDEN", "ACCOUNT_DEACTIVATED"})
_SERVER_CODES = frozenset({"SERVER_ERROR", "MAINTENANCE", "TIMEOUT"})
# INVALID_CLIENT_REQUEST is a catch-all; its message decides (texts from section 6.1 and the FAQ).
_AUTH_MESSAGES = (
    "signature",
    "request has expired",
    "invalid timestamp",
    "x-api-key",
    "x-window",
    "x-timestamp",
)
_ORDER_MESSAGES = ("decimal too long", "triggerprice", "order would", "reduce only", "post only")
_MAX_MESSAGE = 500


def _classify(status: int, code: str, message: str) -> ApiError:
    low = message.lower()
    if status == 429 or code == "TOO_MANY_REQUESTS":
        return RateLimited(code, message, status)
    if code == "RESOURCE_NOT_FOUND" or (
        code == "INVALID_CLIENT_REQUEST" and "not found" in low and "order" in low
    ):
        return NotFound(code, message, status)
    if (
        code in _AUTH_CODES
        or status == 401
        or (code == "INVALID_CLIENT_REQUEST" and any(m in low for m in _AUTH_MESSAGES))
    ):
        return SignatureRejected(code, message, status)
    if code in _ORDER_REJECTION_CODES or (
        code == "INVALID_CLIENT_REQUEST" and any(m in low for m in _ORDER_MESSAGES)
    ):
        return OrderRejected(code, message, status)
    if status >= 500 or code in _SERVER_CODES:
        return ServerUnavailable(code, message, status)
    return ApiError(code, message, status)


def decode_error(status: int, body: str | bytes) -> ApiError:
    """The typed error for a non-2xx response: JSON ``{"code","message"}`` or a plain-text body.

    Plain-text bodies (request-parsing failures, CDN pages) get the code ``HTTP_<status>``. A JSON body of
    the wrong shape, or bytes that are not UTF-8, raise ``RemoteProtocolError``.
    """
    where = f"error body (HTTP {status})"
    text = _text(where, body)
    stripped = text.strip()
    if stripped.startswith(("{", "[", '"')):
        value = parse_json(stripped, where)
        try:
            r = _Row(value, "")
            code = r.text("code")
            message = r.otext("message") or ""
        except FieldError as exc:
            raise RemoteProtocolError(f"{where}: {exc.field}: {exc.reason}") from None
        if not code or len(code) > 64:
            raise RemoteProtocolError(f"{where}: code: implausible error code {code[:64]!r}")
        return _classify(status, code, message[:_MAX_MESSAGE])
    return _classify(status, f"HTTP_{status}", stripped[:_MAX_MESSAGE])
