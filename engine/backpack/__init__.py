"""Sans-I/O Backpack protocol core: no trio, no sockets, no clock reads."""

from engine.backpack.events import BalanceUpdate as BalanceUpdate
from engine.backpack.events import BookTicker as BookTicker
from engine.backpack.events import Depth as Depth
from engine.backpack.events import Kline as Kline
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
from engine.backpack.frames import decode_frame as decode_frame
from engine.backpack.frames import encode_frame as encode_frame
from engine.backpack.signing import Signer as Signer
from engine.backpack.signing import verify_signature as verify_signature

__all__ = [
    "BalanceUpdate",
    "BookTicker",
    "Depth",
    "Kline",
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
    "Signer",
    "Ticker",
    "TimeInForce",
    "Trade",
    "WsError",
    "WsEvent",
    "decode_frame",
    "encode_frame",
    "verify_signature",
]
