"""Sans-I/O Backpack protocol core: no trio, no sockets, no clock reads.

Public surface: ``decode_frame``/``encode_frame`` (WebSocket events), ``decode_response``/``decode_error``
(REST), ``prepare_request``/``verify_request`` and the subscribe frame builders, ``OrderBook``, the filter
helpers and ``Signer``. Every name is re-exported from its owning module.
"""

from engine.backpack.book import Applied as Applied
from engine.backpack.book import BookOutcome as BookOutcome
from engine.backpack.book import BookStatistics as BookStatistics
from engine.backpack.book import Buffered as Buffered
from engine.backpack.book import Ignored as Ignored
from engine.backpack.book import OrderBook as OrderBook
from engine.backpack.book import ResyncNeeded as ResyncNeeded
from engine.backpack.events import DEPTH_WINDOWS_MS as DEPTH_WINDOWS_MS
from engine.backpack.events import KLINE_INTERVALS as KLINE_INTERVALS
from engine.backpack.events import BalanceUpdate as BalanceUpdate
from engine.backpack.events import BookTicker as BookTicker
from engine.backpack.events import Depth as Depth
from engine.backpack.events import Kline as Kline
from engine.backpack.events import Level as Level
from engine.backpack.events import Levels as Levels
from engine.backpack.events import Liquidation as Liquidation
from engine.backpack.events import MarkPrice as MarkPrice
from engine.backpack.events import OpenInterest as OpenInterest
from engine.backpack.events import OrderEventKind as OrderEventKind
from engine.backpack.events import OrderStatus as OrderStatus
from engine.backpack.events import OrderType as OrderType
from engine.backpack.events import OrderUpdate as OrderUpdate
from engine.backpack.events import PositionEventKind as PositionEventKind
from engine.backpack.events import PositionUpdate as PositionUpdate
from engine.backpack.events import Side as Side
from engine.backpack.events import Ticker as Ticker
from engine.backpack.events import TimeInForce as TimeInForce
from engine.backpack.events import Trade as Trade
from engine.backpack.events import WsError as WsError
from engine.backpack.events import WsEvent as WsEvent
from engine.backpack.filters import ceil_to_tick as ceil_to_tick
from engine.backpack.filters import check_order as check_order
from engine.backpack.filters import floor_to_tick as floor_to_tick
from engine.backpack.filters import is_on_grid as is_on_grid
from engine.backpack.filters import quantize_order as quantize_order
from engine.backpack.filters import quantize_price as quantize_price
from engine.backpack.filters import quantize_quantity as quantize_quantity
from engine.backpack.frames import decode_frame as decode_frame
from engine.backpack.frames import encode_frame as encode_frame
from engine.backpack.requests import BATCH_ORDER_PATH as BATCH_ORDER_PATH
from engine.backpack.requests import INSTRUCTIONS as INSTRUCTIONS
from engine.backpack.requests import JsonBody as JsonBody
from engine.backpack.requests import PreparedRequest as PreparedRequest
from engine.backpack.requests import VerifyFailure as VerifyFailure
from engine.backpack.requests import depth_stream as depth_stream
from engine.backpack.requests import instruction_for as instruction_for
from engine.backpack.requests import kline_stream as kline_stream
from engine.backpack.requests import prepare_request as prepare_request
from engine.backpack.requests import private_subscribe_frame as private_subscribe_frame
from engine.backpack.requests import subscribe_frame as subscribe_frame
from engine.backpack.requests import unsubscribe_frame as unsubscribe_frame
from engine.backpack.requests import verify_request as verify_request
from engine.backpack.responses import Balance as Balance
from engine.backpack.responses import BatchItemError as BatchItemError
from engine.backpack.responses import Candle as Candle
from engine.backpack.responses import Collateral as Collateral
from engine.backpack.responses import CollateralAsset as CollateralAsset
from engine.backpack.responses import DepthSnapshot as DepthSnapshot
from engine.backpack.responses import Fill as Fill
from engine.backpack.responses import FundingRate as FundingRate
from engine.backpack.responses import MarginFunction as MarginFunction
from engine.backpack.responses import Market as Market
from engine.backpack.responses import MarketFilters as MarketFilters
from engine.backpack.responses import MarkPriceInfo as MarkPriceInfo
from engine.backpack.responses import OpenInterestInfo as OpenInterestInfo
from engine.backpack.responses import Order as Order
from engine.backpack.responses import Position as Position
from engine.backpack.responses import PublicTrade as PublicTrade
from engine.backpack.responses import Response as Response
from engine.backpack.responses import TickerStats as TickerStats
from engine.backpack.responses import decode_balances as decode_balances
from engine.backpack.responses import decode_batch_orders as decode_batch_orders
from engine.backpack.responses import decode_collateral as decode_collateral
from engine.backpack.responses import decode_depth as decode_depth
from engine.backpack.responses import decode_error as decode_error
from engine.backpack.responses import decode_fills as decode_fills
from engine.backpack.responses import decode_funding_rates as decode_funding_rates
from engine.backpack.responses import decode_klines as decode_klines
from engine.backpack.responses import decode_mark_prices as decode_mark_prices
from engine.backpack.responses import decode_market as decode_market
from engine.backpack.responses import decode_markets as decode_markets
from engine.backpack.responses import decode_open_interest as decode_open_interest
from engine.backpack.responses import decode_order as decode_order
from engine.backpack.responses import decode_orders as decode_orders
from engine.backpack.responses import decode_ping as decode_ping
from engine.backpack.responses import decode_positions as decode_positions
from engine.backpack.responses import decode_response as decode_response
from engine.backpack.responses import decode_ticker as decode_ticker
from engine.backpack.responses import decode_tickers as decode_tickers
from engine.backpack.responses import decode_time as decode_time
from engine.backpack.responses import decode_trades as decode_trades
from engine.backpack.signing import DEFAULT_WINDOW_MS as DEFAULT_WINDOW_MS
from engine.backpack.signing import MAX_WINDOW_MS as MAX_WINDOW_MS
from engine.backpack.signing import Signer as Signer
from engine.backpack.signing import batch_signing_string as batch_signing_string
from engine.backpack.signing import render_value as render_value
from engine.backpack.signing import signing_string as signing_string
from engine.backpack.signing import verify_signature as verify_signature

__all__ = [
    "Applied",
    "BATCH_ORDER_PATH",
    "Balance",
    "BalanceUpdate",
    "BatchItemError",
    "BookOutcome",
    "BookStatistics",
    "BookTicker",
    "Buffered",
    "Candle",
    "Collateral",
    "CollateralAsset",
    "DEFAULT_WINDOW_MS",
    "DEPTH_WINDOWS_MS",
    "Depth",
    "DepthSnapshot",
    "Fill",
    "FundingRate",
    "INSTRUCTIONS",
    "Ignored",
    "JsonBody",
    "KLINE_INTERVALS",
    "Kline",
    "Level",
    "Levels",
    "Liquidation",
    "MAX_WINDOW_MS",
    "MarginFunction",
    "MarkPrice",
    "MarkPriceInfo",
    "Market",
    "MarketFilters",
    "OpenInterest",
    "OpenInterestInfo",
    "Order",
    "OrderBook",
    "OrderEventKind",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Position",
    "PositionEventKind",
    "PositionUpdate",
    "PreparedRequest",
    "PublicTrade",
    "Response",
    "ResyncNeeded",
    "Side",
    "Signer",
    "Ticker",
    "TickerStats",
    "TimeInForce",
    "Trade",
    "VerifyFailure",
    "WsError",
    "WsEvent",
    "batch_signing_string",
    "ceil_to_tick",
    "check_order",
    "decode_balances",
    "decode_batch_orders",
    "decode_collateral",
    "decode_depth",
    "decode_error",
    "decode_fills",
    "decode_frame",
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
    "depth_stream",
    "encode_frame",
    "floor_to_tick",
    "instruction_for",
    "is_on_grid",
    "kline_stream",
    "prepare_request",
    "private_subscribe_frame",
    "quantize_order",
    "quantize_price",
    "quantize_quantity",
    "render_value",
    "signing_string",
    "subscribe_frame",
    "unsubscribe_frame",
    "verify_request",
    "verify_signature",
]
