"""REST responses and error bodies: the protocol document's examples and fuzzing for total decoding."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backpack.events import OrderStatus, OrderType, Side, TimeInForce
from engine.backpack.responses import (
    Balance,
    BatchItemError,
    Candle,
    DepthSnapshot,
    Fill,
    FundingRate,
    MarginFunction,
    MarkPriceInfo,
    OpenInterestInfo,
    Order,
    PublicTrade,
    TickerStats,
    decode_error,
    decode_response,
)
from engine.errors import (
    ApiError,
    AuthError,
    ExchangeUnavailable,
    LocalProtocolError,
    NotFound,
    OrderRejected,
    ProtocolError,
    RateLimited,
    RemoteProtocolError,
    ServerUnavailable,
    SignatureRejected,
    TransientError,
)
from tests.backpack.strategies import json_values

D = Decimal

SPOT_MARKET = """{"baseSymbol":"BTC","createdAt":"2025-01-21T06:34:54.691858",
 "filters":{"price":{"borrowEntryFeeMaxMultiplier":"1.01","borrowEntryFeeMinMultiplier":"0.99","discoveryBoundBand":null,
   "maxImpactMultiplier":"1.01","maxMultiplier":"2","maxPrice":null,"maxPriceUpdateMultiplier":"1.0025",
   "meanMarkPriceBand":{"maxMultiplier":"1.03","minMultiplier":"0.97"},"meanPremiumBand":null,
   "minImpactMultiplier":"0.99","minMultiplier":"0.25","minPrice":"0.1","minPriceUpdateMultiplier":"0.9975","tickSize":"0.1"},
  "quantity":{"maxQuantity":null,"minQuantity":"0.00001","stepSize":"0.00001"}},
 "fundingInterval":28800000,"fundingRateLowerBound":null,"fundingRateUpperBound":null,"imfFunction":null,
 "marketType":"SPOT","mmfFunction":null,"openInterestLimit":"0","orderBookState":"Open","positionLimitWeight":null,
 "quoteSymbol":"USDC","rwaMarketType":null,"symbol":"BTC_USDC","visible":true}"""

PERP_MARKET = """{"symbol":"BTC_USDC_PERP","baseSymbol":"BTC","quoteSymbol":"USDC","marketType":"PERP","rwaMarketType":null,
 "orderBookState":"Open","visible":true,"createdAt":"2025-01-21T06:34:54.691858","positionLimitWeight":null,
 "filters":{"price":{"minPrice":"0.1","maxPrice":"1000000","tickSize":"0.1","maxMultiplier":"1.25","minMultiplier":"0.75",
   "maxImpactMultiplier":"1.03","minImpactMultiplier":"0.97","meanMarkPriceBand":{"maxMultiplier":"1.1","minMultiplier":"0.9"},
   "meanPremiumBand":{"tolerancePct":"0.05"},"borrowEntryFeeMaxMultiplier":null,"borrowEntryFeeMinMultiplier":null},
  "quantity":{"minQuantity":"0.00001","maxQuantity":null,"stepSize":"0.00001"}},
 "imfFunction":{"type":"sqrt","base":"0.01333333","factor":"0.00002494"},
 "mmfFunction":{"type":"sqrt","base":"0.00666667","factor":"0.00001496"},
 "fundingInterval":3600000,"fundingRateUpperBound":"100","fundingRateLowerBound":"-100","openInterestLimit":"4000"}"""

TICKER = """{"firstPrice":"103.68","high":"104.96","lastPrice":"100.67","low":"100.57","priceChange":"-3.01",
 "priceChangePercent":"-0.029032","quoteVolume":"1163648.1557","symbol":"SOL_USDC","trades":"3872","volume":"11355.78"}"""

DEPTH = """{"asks":[["100.65","65.5"],["100.66","240.6"],["100.67","30.64"]],
 "bids":[["100.62","168.89"],["100.63","149.64"],["100.64","67.95"]],
 "lastUpdateId":"4324522523","timestamp":1788285151254895}"""

KLINES = """[{"close":"101.02","end":"2026-09-01 16:53:00","high":"101.05","low":"101.02","open":"101.05",
  "quoteVolume":"44.4554","start":"2026-09-01 16:52:00","trades":"3","volume":"0.44"}]"""

LIMIT_ORDER = """{"clientId":null,"createdAt":1788285244094,"executedQuantity":"0","executedQuoteQuantity":"0","id":"59669287267",
 "orderType":"Limit","postOnly":true,"price":"1.0077","quantity":"20","reduceOnly":null,"relatedOrderId":null,
 "selfTradePrevention":"RejectTaker","side":"Ask","status":"New","stopLossLimitPrice":null,"stopLossTriggerBy":null,
 "stopLossTriggerPrice":null,"strategyId":null,"symbol":"USDT_USDC","takeProfitLimitPrice":null,"takeProfitTriggerBy":null,
 "takeProfitTriggerPrice":null,"timeInForce":"GTC","triggerBy":null,"triggerPrice":null,"triggerQuantity":null,"triggeredAt":null}"""

MARKET_ORDER = """{"clientId":null,"createdAt":1757621340498,"executedQuantity":"0.001","executedQuoteQuantity":"4.42182","id":"8284584794",
 "orderType":"Market","quantity":"0.001","quoteQuantity":"4.43","reduceOnly":null,"relatedOrderId":null,
 "selfTradePrevention":"RejectTaker","side":"Bid","status":"Filled","stopLossLimitPrice":null,"stopLossTriggerBy":null,
 "stopLossTriggerPrice":null,"strategyId":null,"symbol":"ETH_USDC_PERP","takeProfitLimitPrice":null,
 "takeProfitTriggerBy":null,"takeProfitTriggerPrice":null,"timeInForce":"GTC","triggerBy":null,"triggerPrice":null,
 "triggerQuantity":null,"triggeredAt":null}"""

HISTORY_ORDER = """{"clientId":null,"createdAt":"2026-09-01T17:54:04.094","executedQuantity":"0","executedQuoteQuantity":"0","expiryReason":null,
 "id":"59669287267","orderType":"Limit","postOnly":true,"price":"1.0077","quantity":"20","quoteQuantity":"20.154",
 "selfTradePrevention":"RejectTaker","side":"Ask","slippageTolerance":null,"slippageToleranceType":null,"status":"Cancelled",
 "stopLossLimitPrice":null,"stopLossTriggerBy":null,"stopLossTriggerPrice":null,"strategyId":null,"symbol":"USDT_USDC",
 "systemOrderType":null,"takeProfitLimitPrice":null,"takeProfitTriggerBy":null,"takeProfitTriggerPrice":null,
 "timeInForce":"GTC","triggerBy":null,"triggerPrice":null,"triggerQuantity":null}"""

FILL = """{"clientId":null,"fee":"0.0047325","feeSymbol":"USDC","isMaker":false,"orderId":"5578417290","price":"4732.5",
 "quantity":"0.001","side":"Ask","symbol":"ETH_USDC","systemOrderType":null,"timestamp":"2025-08-13T17:26:01.197","tradeId":2959285}"""

COLLATERAL = """{"assetsValue":"28.49145","borrowLiability":"0",
 "collateral":[{"assetMarkPrice":"0.9997","availableQuantity":"30","balanceNotional":"29.991","collateralValue":"28.49145",
   "collateralWeight":"0.95","lendQuantity":"0","openOrderQuantity":"0","symbol":"USDT","totalQuantity":"30"}],
 "imf":"1","liabilitiesValue":"0","marginFraction":null,"mmf":"0.007","netEquity":"28.49145",
 "netEquityAvailable":"28.49145","netEquityLocked":"0","netExposureFutures":"0","pnlUnrealized":"0","unsettledEquity":"0"}"""

POSITIONS = """[{"breakEvenPrice":"4460.3195","cumulativeFundingPayment":"-0.022061","cumulativeInterest":"0","entryPrice":"4447.065",
  "estLiquidationPrice":"0","imf":"0.02","imfFunction":{"base":"0.02","factor":"0.0000935","type":"sqrt"},
  "markPrice":"4420.23644794","mmf":"0.0125","mmfFunction":{"base":"0.0125","factor":"0.0000561","type":"sqrt"},
  "netCost":"8.89413","netExposureNotional":"8.84047289588","netExposureQuantity":"0.002","netQuantity":"0.002",
  "pnlRealized":"-0.054434","pnlUnrealized":"0.000776","positionId":"5479295502","subaccountId":null,
  "symbol":"ETH_USDC_PERP","userId":1813870}]"""


def _us(*args: int) -> int:
    return (datetime(*args, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // __import__(
        "datetime"
    ).timedelta(microseconds=1)


def test_spot_market_row() -> None:
    """The recorded BTC_USDC market row decodes with its filters, null bounds and funding interval."""
    (market,) = decode_response("/api/v1/markets", f"[{SPOT_MARKET}]")  # type: ignore[misc]
    assert market.symbol == "BTC_USDC"
    assert market.market_type == "SPOT"
    assert market.created_at == datetime(2025, 1, 21, 6, 34, 54, 691858, tzinfo=UTC)
    f = market.filters
    assert (f.tick_size, f.min_price, f.max_price) == (D("0.1"), D("0.1"), None)
    assert (f.step_size, f.min_quantity, f.max_quantity) == (D("0.00001"), D("0.00001"), None)
    assert (f.max_multiplier, f.min_multiplier) == (D("2"), D("0.25"))
    assert (f.max_impact_multiplier, f.min_impact_multiplier) == (D("1.01"), D("0.99"))
    assert market.funding_interval_us == 28_800_000_000
    assert market.imf_function is None
    assert market.open_interest_limit == D("0")
    assert market.visible is True


def test_perp_market_row() -> None:
    """The BTC_USDC_PERP default row decodes its sqrt margin functions, funding bounds and 1 h interval."""
    market = decode_response("/api/v1/market?symbol=BTC_USDC_PERP", PERP_MARKET)
    assert market.symbol == "BTC_USDC_PERP"  # type: ignore[union-attr]
    assert market.imf_function == MarginFunction(type="sqrt", base=D("0.01333333"), factor=D("0.00002494"))  # type: ignore[union-attr]
    assert market.mmf_function == MarginFunction(type="sqrt", base=D("0.00666667"), factor=D("0.00001496"))  # type: ignore[union-attr]
    assert market.funding_interval_us == 3_600_000_000  # type: ignore[union-attr]
    assert market.funding_rate_upper_bound_bps == D("100")  # type: ignore[union-attr]
    assert market.funding_rate_lower_bound_bps == D("-100")  # type: ignore[union-attr]
    assert market.filters.max_price == D("1000000")  # type: ignore[union-attr]
    assert market.filters.max_multiplier == D("1.25")  # type: ignore[union-attr]


def test_ticker_and_tickers() -> None:
    """The section 3.3 ticker decodes, with trades as an integer, alone and in the /tickers array."""
    expected = TickerStats(
        symbol="SOL_USDC",
        first_price=D("103.68"),
        last_price=D("100.67"),
        high=D("104.96"),
        low=D("100.57"),
        price_change=D("-3.01"),
        price_change_percent=D("-0.029032"),
        base_volume=D("11355.78"),
        quote_volume=D("1163648.1557"),
        trades=3872,
    )
    assert decode_response("/api/v1/ticker", TICKER) == expected
    assert decode_response("/api/v1/tickers", f"[{TICKER}]") == (expected,)
    odd = decode_response("/api/v1/ticker", TICKER.replace('"-0.029032"', '"N/A"'))
    assert odd.price_change_percent is None  # type: ignore[union-attr]


def test_depth_snapshot() -> None:
    """The depth snapshot keeps ascending order (best bid last), a string lastUpdateId and µs time."""
    snap = decode_response("/api/v1/depth", DEPTH)
    assert snap == DepthSnapshot(
        last_update_id=4324522523,
        timestamp_us=1788285151254895,
        bids=((D("100.62"), D("168.89")), (D("100.63"), D("149.64")), (D("100.64"), D("67.95"))),
        asks=((D("100.65"), D("65.5")), (D("100.66"), D("240.6")), (D("100.67"), D("30.64"))),
    )
    assert snap.bids[-1][0] == D("100.64")  # type: ignore[union-attr]
    assert snap.asks[0][0] == D("100.65")  # type: ignore[union-attr]


def test_klines() -> None:
    """A kline row decodes with UTC datetimes and string trades; null OHLC becomes None."""
    assert decode_response("/api/v1/klines", KLINES) == (
        Candle(
            start=datetime(2026, 9, 1, 16, 52, tzinfo=UTC),
            end=datetime(2026, 9, 1, 16, 53, tzinfo=UTC),
            open=D("101.05"),
            high=D("101.05"),
            low=D("101.02"),
            close=D("101.02"),
            volume=D("0.44"),
            quote_volume=D("44.4554"),
            trades=3,
        ),
    )
    empty = KLINES.replace('"101.02"', "null").replace('"101.05"', "null")
    (candle,) = decode_response("/api/v1/klines", empty)  # type: ignore[misc]
    assert (candle.open, candle.high, candle.low, candle.close) == (None, None, None, None)


def test_trades_mark_prices_open_interest_funding() -> None:
    """Public perp data rows decode with ms timestamps turned into µs."""
    trades = '[{"id":381731418,"isBuyerMaker":false,"price":"100.67","quantity":"0.22","quoteQuantity":"22.1474","timestamp":1788285123140}]'
    assert decode_response("/api/v1/trades", trades) == (
        PublicTrade(
            trade_id=381731418,
            price=D("100.67"),
            quantity=D("0.22"),
            quote_quantity=D("22.1474"),
            timestamp_us=1788285123140000,
            buyer_is_maker=False,
        ),
    )
    marks = '[{"fundingRate":"0.0000125","indexPrice":"77340.4624319","markPrice":"77346.3","nextFundingTimestamp":1788285600000,"symbol":"BTC_USDC_PERP"}]'
    assert decode_response("/api/v1/markPrices", marks) == (
        MarkPriceInfo(
            symbol="BTC_USDC_PERP",
            mark_price=D("77346.3"),
            index_price=D("77340.4624319"),
            funding_rate=D("0.0000125"),
            next_funding_time_us=1788285600000000,
        ),
    )
    oi = '[{"openInterest":"535.49228","symbol":"BTC_USDC_PERP","timestamp":1788285149338}]'
    assert decode_response("/api/v1/openInterest", oi) == (
        OpenInterestInfo(symbol="BTC_USDC_PERP", open_interest=D("535.49228"), timestamp_us=1788285149338000),
    )
    rates = (
        '[{"fundingRate":"0.0000125","intervalEndTimestamp":"2025-09-11T12:00:00","symbol":"ETH_USDC_PERP"}]'
    )
    assert decode_response("/api/v1/fundingRates", rates) == (
        FundingRate(
            symbol="ETH_USDC_PERP",
            funding_rate=D("0.0000125"),
            interval_end=datetime(2025, 9, 11, 12, tzinfo=UTC),
        ),
    )


def test_balances_and_collateral() -> None:
    """Balances decode per asset (sorted); collateral keeps a null margin fraction as None."""
    body = '{"USDC":{"available":"112.847976936","locked":"0","staked":"0"},"ETH":{"available":"0.0019918","locked":"0","staked":"0"}}'
    assert decode_response("/api/v1/capital", body) == (
        Balance(asset="ETH", available=D("0.0019918"), locked=D("0"), staked=D("0")),
        Balance(asset="USDC", available=D("112.847976936"), locked=D("0"), staked=D("0")),
    )
    col = decode_response("/api/v1/capital/collateral", COLLATERAL)
    assert col.net_equity == D("28.49145")  # type: ignore[union-attr]
    assert col.margin_fraction is None  # type: ignore[union-attr]
    assert col.mmf == D("0.007")  # type: ignore[union-attr]
    (asset,) = col.collateral  # type: ignore[union-attr]
    assert (asset.symbol, asset.collateral_weight, asset.total_quantity) == ("USDT", D("0.95"), D("30"))


def test_positions() -> None:
    """A position row decodes; an empty array means flat."""
    (pos,) = decode_response("/api/v1/position", POSITIONS)  # type: ignore[misc]
    assert pos.symbol == "ETH_USDC_PERP"
    assert pos.net_quantity == D("0.002")
    assert pos.entry_price == D("4447.065")
    assert pos.cumulative_funding_payment == D("-0.022061")
    assert pos.position_id == "5479295502"
    assert decode_response("/api/v1/position", "[]") == ()


LIMIT_EXPECTED = Order(
    order_id="59669287267",
    client_id=None,
    symbol="USDT_USDC",
    side=Side.ASK,
    order_type=OrderType.LIMIT,
    time_in_force=TimeInForce.GTC,
    status=OrderStatus.NEW,
    quantity=D("20"),
    quote_quantity=None,
    price=D("1.0077"),
    executed_quantity=D("0"),
    executed_quote_quantity=D("0"),
    created_at_us=1788285244094000,
    post_only=True,
    self_trade_prevention="RejectTaker",
)


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/v1/order"), ("GET", "/api/v1/order"), ("DELETE", "/api/v1/order")]
)
def test_order_shape_for_execute_query_cancel(method: str, path: str) -> None:
    """POST, GET and DELETE /order all decode the same order shape."""
    assert decode_response(path, LIMIT_ORDER, method=method) == LIMIT_EXPECTED


def test_market_order_and_lists() -> None:
    """A filled market order has no price and a derived quote cap; open orders and cancel-all are arrays."""
    order = decode_response("/api/v1/order", MARKET_ORDER, method="POST")
    assert order.status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert order.price is None  # type: ignore[union-attr]
    assert order.quote_quantity == D("4.43")  # type: ignore[union-attr]
    assert order.executed_quote_quantity / order.executed_quantity == D("4421.82")  # type: ignore[union-attr]
    both = f"[{LIMIT_ORDER},{MARKET_ORDER}]"
    assert decode_response("/api/v1/orders", both)[0] == LIMIT_EXPECTED  # type: ignore[index]
    assert len(decode_response("/api/v1/orders", both, method="DELETE")) == 2  # type: ignore[arg-type]
    assert decode_response("/api/v1/orders", "[]", method="DELETE") == ()


def test_batch_order_response_mixes_orders_and_errors() -> None:
    """A batch response yields an Order or a BatchItemError per submitted order."""
    body = f'[{LIMIT_ORDER},{{"code":"INSUFFICIENT_FUNDS","message":"Insufficient funds","operation":"Err"}}]'
    assert decode_response("/api/v1/orders", body, method="POST") == (
        LIMIT_EXPECTED,
        BatchItemError(code="INSUFFICIENT_FUNDS", message="Insufficient funds"),
    )


def test_order_history_and_fills() -> None:
    """History orders carry naive datetime createdAt (as µs); fills carry string client ids and fees."""
    (hist,) = decode_response("/wapi/v1/history/orders", f"[{HISTORY_ORDER}]")  # type: ignore[misc]
    assert hist.status is OrderStatus.CANCELLED
    assert hist.created_at_us == _us(2026, 9, 1, 17, 54, 4) + 94_000
    assert hist.quote_quantity == D("20.154")
    assert decode_response("/wapi/v1/history/fills", f"[{FILL}]") == (
        Fill(
            trade_id=2959285,
            order_id="5578417290",
            client_id=None,
            symbol="ETH_USDC",
            side=Side.ASK,
            price=D("4732.5"),
            quantity=D("0.001"),
            fee=D("0.0047325"),
            fee_symbol="USDC",
            is_maker=False,
            timestamp_us=_us(2025, 8, 13, 17, 26, 1) + 197_000,
            system_order_type=None,
        ),
    )


def test_ping_and_time_are_plain_text() -> None:
    """/ping is the text pong and /time is integer ms (returned as µs)."""
    assert decode_response("/api/v1/ping", b"pong") == "pong"
    assert decode_response("/api/v1/time", "1788285151083") == 1788285151083000
    with pytest.raises(RemoteProtocolError):
        decode_response("/api/v1/time", "soon")


def test_unknown_path_is_a_local_error() -> None:
    """Asking for a path without a decoder is our mistake: LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        decode_response("/api/v1/nope", "{}")


def test_malformed_response_names_path_and_field() -> None:
    """A bad field raises RemoteProtocolError naming the path and the nested field."""
    with pytest.raises(RemoteProtocolError, match=r"/api/v1/depth: bids\[1\]\[0\]"):
        decode_response("/api/v1/depth", DEPTH.replace('"100.63"', '"x"'))
    with pytest.raises(RemoteProtocolError, match=r"filters.price.tickSize"):
        decode_response("/api/v1/market", SPOT_MARKET.replace('"tickSize":"0.1"', '"tickSize":0.1'))


_PATHS = [
    ("GET", "/api/v1/markets"),
    ("GET", "/api/v1/market"),
    ("GET", "/api/v1/ticker"),
    ("GET", "/api/v1/depth"),
    ("GET", "/api/v1/klines"),
    ("GET", "/api/v1/trades"),
    ("GET", "/api/v1/markPrices"),
    ("GET", "/api/v1/capital"),
    ("GET", "/api/v1/capital/collateral"),
    ("GET", "/api/v1/position"),
    ("POST", "/api/v1/order"),
    ("POST", "/api/v1/orders"),
    ("GET", "/wapi/v1/history/fills"),
    ("GET", "/api/v1/time"),
]


@settings(max_examples=150)
@given(route=st.sampled_from(_PATHS), value=json_values)
def test_arbitrary_json_responses_only_raise_protocol_error(route: tuple[str, str], value: Any) -> None:
    """Any JSON body for any path decodes or raises ProtocolError."""
    method, path = route
    with contextlib.suppress(ProtocolError):
        decode_response(path, json.dumps(value), method=method)


@settings(max_examples=150)
@given(
    route=st.sampled_from(_PATHS),
    base=st.sampled_from([SPOT_MARKET, TICKER, DEPTH, LIMIT_ORDER, COLLATERAL, FILL]),
    key_pick=st.integers(0, 100),
    value=json_values,
)
def test_mutated_responses_only_raise_protocol_error(
    route: tuple[str, str], base: str, key_pick: int, value: Any
) -> None:
    """A documented body with one field replaced, decoded as any path, decodes or raises ProtocolError."""
    obj = json.loads(base)
    keys = sorted(obj)
    obj[keys[key_pick % len(keys)]] = value
    method, path = route
    for body in (json.dumps(obj), json.dumps([obj])):
        with contextlib.suppress(ProtocolError):
            decode_response(path, body, method=method)


# --- error bodies -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (
            400,
            '{"code":"INVALID_CLIENT_REQUEST","message":"Invalid market symbol"}',
            ApiError,
            "INVALID_CLIENT_REQUEST",
        ),
        (404, '{"code":"RESOURCE_NOT_FOUND","message":"Not Found"}', NotFound, "RESOURCE_NOT_FOUND"),
        (
            400,
            '{"code":"INVALID_CLIENT_REQUEST","message":"Request has expired"}',
            SignatureRejected,
            "INVALID_CLIENT_REQUEST",
        ),
        (
            400,
            '{"code":"INVALID_CLIENT_REQUEST","message":"Invalid signature"}',
            SignatureRejected,
            "INVALID_CLIENT_REQUEST",
        ),
        (
            400,
            '{"code":"INVALID_CLIENT_REQUEST","message":"Invalid X-Signature header"}',
            SignatureRejected,
            "INVALID_CLIENT_REQUEST",
        ),
        (401, '{"code":"UNAUTHORIZED","message":"Unauthorized"}', SignatureRejected, "UNAUTHORIZED"),
        (400, '{"code":"INVALID_SIGNATURE","message":"bad"}', SignatureRejected, "INVALID_SIGNATURE"),
        (
            400,
            '{"code":"INVALID_CLIENT_REQUEST","message":"Quantity decimal too long"}',
            OrderRejected,
            "INVALID_CLIENT_REQUEST",
        ),
        (
            400,
            '{"code":"INVALID_CLIENT_REQUEST","message":"Price decimal too long"}',
            OrderRejected,
            "INVALID_CLIENT_REQUEST",
        ),
        (
            400,
            '{"code":"INVALID_CLIENT_REQUEST","message":"Must specify both `triggerPrice` and `triggerQuantity` or neither"}',
            OrderRejected,
            "INVALID_CLIENT_REQUEST",
        ),
        (
            400,
            '{"code":"INVALID_ORDER","message":"Order would immediately match and take"}',
            OrderRejected,
            "INVALID_ORDER",
        ),
        (400, '{"code":"INVALID_ORDER","message":"Invalid order"}', OrderRejected, "INVALID_ORDER"),
        (
            400,
            '{"code":"INVALID_PRICE","message":"Price is too far from the last active price"}',
            OrderRejected,
            "INVALID_PRICE",
        ),
        (
            400,
            '{"code":"INSUFFICIENT_FUNDS","message":"Insufficient funds"}',
            OrderRejected,
            "INSUFFICIENT_FUNDS",
        ),
        (
            400,
            '{"code":"INSUFFICIENT_MARGIN","message":"Insufficient margin"}',
            OrderRejected,
            "INSUFFICIENT_MARGIN",
        ),
        (
            400,
            '{"code":"INVALID_QUANTITY","message":"Quantity too small"}',
            OrderRejected,
            "INVALID_QUANTITY",
        ),
        (429, '{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}', RateLimited, "TOO_MANY_REQUESTS"),
        (429, "", RateLimited, "HTTP_429"),
        (503, "Unknown error, please check your request or try again later.", ServerUnavailable, "HTTP_503"),
        (503, '{"code":"MAINTENANCE","message":"Maintenance"}', ServerUnavailable, "MAINTENANCE"),
        (500, '{"code":"SERVER_ERROR","message":"oops"}', ServerUnavailable, "SERVER_ERROR"),
        (
            400,
            'failed to parse parameter `limit`: failed to parse "DepthLimit": Expect a valid enumeration value.',
            ApiError,
            "HTTP_400",
        ),
        (404, "not found", ApiError, "HTTP_404"),
    ],
)
def test_error_bodies_map_to_typed_errors(status: int, body: str, cls: type[ApiError], code: str) -> None:
    """Each documented error body maps to its typed ApiError subclass, keeping code, message and status."""
    err = decode_error(status, body)
    assert type(err) is cls
    assert err.code == code
    assert err.status == status


def test_error_classes_carry_their_retry_and_fatality_flavour() -> None:
    """RateLimited and ServerUnavailable are transient; SignatureRejected is an AuthError."""
    assert isinstance(decode_error(429, ""), TransientError)
    assert isinstance(decode_error(502, "<html>bad gateway</html>"), ExchangeUnavailable)
    assert isinstance(decode_error(400, '{"code":"INVALID_SIGNATURE","message":"x"}'), AuthError)


@pytest.mark.parametrize(
    "body", ['{"message":"no code"}', '{"code":5,"message":"x"}', "[1,2]", '{"code":', b"\xff\xfe"]
)
def test_malformed_error_bodies_raise_remote_protocol_error(body: str | bytes) -> None:
    """An error body that is JSON of the wrong shape, broken JSON or not UTF-8 is a RemoteProtocolError."""
    with pytest.raises(RemoteProtocolError):
        decode_error(400, body)


@settings(max_examples=200)
@given(status=st.integers(100, 599), body=st.binary(max_size=80) | json_values.map(json.dumps))
def test_decode_error_is_total(status: int, body: bytes | str) -> None:
    """decode_error returns an ApiError or raises RemoteProtocolError for any status and body."""
    try:
        err = decode_error(status, body)
    except RemoteProtocolError:
        return
    assert isinstance(err, ApiError)
