"""Where orders go: the :class:`Broker` protocol and its two implementations.

* :class:`ExchangeBroker` talks to Backpack or the simulator through :class:`engine.rest.RestClient`
  (``POST /api/v1/order`` limit IOC with ``clientId``, lookups by ``clientId`` in open orders and order
  history, fills history, ``DELETE /api/v1/orders``, ``/capital``, ``/capital/collateral``, ``/position``,
  ``/markets`` for filters).
* :class:`PaperBroker` fills locally (``engine.mode = "paper"``): IOC against the live book of the latest
  :class:`~engine.market.view.MarketView` with the pure model of :mod:`engine.paper`. Its balances are derived
  from the journal's fills plus an initial quote amount stored once in the journal's metadata, so a restart
  keeps them and they can never disagree with the ledger.

Invariants: a broker never retries and never reads ``os.environ``; every exchange-facing value it returns is
the protocol core's vocabulary (``engine.backpack.Order`` / ``Fill`` / ``Position`` / ``Collateral``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol

import attrs
import trio

from engine.backpack import Collateral, Fill, Market, MarketFilters, Order, Position
from engine.backpack.events import OrderStatus, OrderType, Side, TimeInForce
from engine.backpack.responses import Balance
from engine.errors import InvariantViolation, NotFound, OrderRejected, RemoteProtocolError
from engine.market.view import MarketView
from engine.orders.fsm import OrderRecord
from engine.paper import book_levels, fill_ioc
from engine.rest import RestClient
from engine.runtime import LatestValue
from engine.store.journal import Journal

__all__ = ["Broker", "BrokerAccount", "ExchangeBroker", "PaperBroker", "split_symbol"]

log = logging.getLogger("engine.orders.broker")

_ZERO = Decimal(0)
# Allowance for clock skew between us and the exchange when deciding that a signed request has expired.
_SKEW_SLACK_MS = 1000


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) of ``BTC_USDC`` / ``BTC_USDC_PERP``."""
    parts = symbol.split("_")
    if len(parts) < 2:
        raise InvariantViolation(f"symbol {symbol!r} is not BASE_QUOTE[_PERP]")
    return parts[0], parts[1]


@attrs.frozen(kw_only=True)
class BrokerAccount:
    """Balances and (perp) position as the broker reports them."""

    quote_available: Decimal
    quote_locked: Decimal
    base_total: Decimal | None
    position: Position | None
    collateral: Collateral | None


class Broker(Protocol):
    """What the orders actor needs from an exchange (real, simulated or paper)."""

    @property
    def kind(self) -> str: ...

    def absent_after_ms(self, sent_by_ms: int) -> int:
        """Wall time after which a request signed no later than ``sent_by_ms`` can no longer be accepted."""
        ...

    async def filters(self, symbol: str) -> MarketFilters: ...

    async def submit(self, order: OrderRecord) -> Order:
        """Send ``order`` as a limit IOC with its ``clientId``; the exchange's answer."""
        ...

    async def find(self, order: OrderRecord) -> Order | None:
        """The order with ``order.client_id``: open, else in order history; None when absent from both."""
        ...

    async def fills_of(self, symbol: str, exchange_order_id: str) -> tuple[Fill, ...]: ...

    async def recent_fills(self, symbol: str) -> tuple[Fill, ...]: ...

    async def open_orders(self, symbol: str) -> tuple[Order, ...]: ...

    async def cancel(self, symbol: str, exchange_order_id: str) -> None: ...

    async def cancel_all(self, symbol: str) -> tuple[Order, ...]: ...

    async def account(self, symbol: str, market_type: str) -> BrokerAccount: ...


def _order_params(order: OrderRecord) -> dict[str, object]:
    if order.limit_price is None:
        raise InvariantViolation(f"order {order.client_id}: the orders actor sends limit IOC orders only")
    return {
        "symbol": order.symbol,
        "side": order.side.value,
        "orderType": "Limit",
        "timeInForce": "IOC",
        "quantity": order.qty,
        "price": order.limit_price,
        "clientId": order.client_id,
    }


def _expect(value: object, kind: type, what: str) -> None:
    if not isinstance(value, kind):
        raise RemoteProtocolError(f"{what}: expected {kind.__name__}, got {type(value).__name__}")


class ExchangeBroker:
    """The real exchange or the simulator over signed REST."""

    def __init__(self, rest: RestClient, *, history_limit: int = 1000, kind: str = "exchange") -> None:
        self._rest = rest
        self._history_limit = history_limit
        self._kind = kind

    @property
    def kind(self) -> str:
        return self._kind

    def absent_after_ms(self, sent_by_ms: int) -> int:
        return sent_by_ms + self._rest.window_ms + _SKEW_SLACK_MS

    async def filters(self, symbol: str) -> MarketFilters:
        markets = await self._rest.public("/api/v1/markets")
        if not isinstance(markets, tuple):
            raise RemoteProtocolError("/api/v1/markets: expected a list of markets")
        for market in markets:
            if isinstance(market, Market) and market.symbol == symbol:
                return market.filters
        raise InvariantViolation(f"market {symbol} is not listed by the exchange")

    async def submit(self, order: OrderRecord) -> Order:
        reply = await self._rest.signed("POST", "/api/v1/order", _order_params(order))
        _expect(reply, Order, "POST /api/v1/order")
        assert isinstance(reply, Order)
        return reply

    async def find(self, order: OrderRecord) -> Order | None:
        try:
            found = await self._rest.signed("GET", "/api/v1/order",
                                            {"symbol": order.symbol, "clientId": order.client_id})
        except NotFound:
            found = None
        if isinstance(found, Order):
            return found
        history = await self._rest.signed("GET", "/wapi/v1/history/orders",
                                          {"symbol": order.symbol, "limit": self._history_limit})
        if not isinstance(history, tuple):
            raise RemoteProtocolError("/wapi/v1/history/orders: expected a list")
        for row in history:
            if isinstance(row, Order) and row.client_id == order.client_id:
                return row
        return None

    async def fills_of(self, symbol: str, exchange_order_id: str) -> tuple[Fill, ...]:
        rows = await self._rest.signed("GET", "/wapi/v1/history/fills",
                                       {"symbol": symbol, "orderId": exchange_order_id,
                                        "limit": self._history_limit})
        return tuple(r for r in _tuple(rows, "fills") if isinstance(r, Fill))

    async def recent_fills(self, symbol: str) -> tuple[Fill, ...]:
        rows = await self._rest.signed("GET", "/wapi/v1/history/fills",
                                       {"symbol": symbol, "limit": self._history_limit})
        return tuple(r for r in _tuple(rows, "fills") if isinstance(r, Fill))

    async def open_orders(self, symbol: str) -> tuple[Order, ...]:
        rows = await self._rest.signed("GET", "/api/v1/orders", {"symbol": symbol})
        return tuple(r for r in _tuple(rows, "open orders") if isinstance(r, Order))

    async def cancel(self, symbol: str, exchange_order_id: str) -> None:
        try:
            await self._rest.signed("DELETE", "/api/v1/order", {"symbol": symbol, "orderId": exchange_order_id})
        except NotFound:
            log.info("cancel %s %s: already gone", symbol, exchange_order_id)

    async def cancel_all(self, symbol: str) -> tuple[Order, ...]:
        rows = await self._rest.signed("DELETE", "/api/v1/orders", {"symbol": symbol})
        return tuple(r for r in _tuple(rows, "cancelled orders") if isinstance(r, Order))

    async def account(self, symbol: str, market_type: str) -> BrokerAccount:
        base, quote = split_symbol(symbol)
        if market_type == "perp":
            collateral = await self._rest.signed("GET", "/api/v1/capital/collateral")
            _expect(collateral, Collateral, "/api/v1/capital/collateral")
            assert isinstance(collateral, Collateral)
            positions = await self._rest.signed("GET", "/api/v1/position", {"symbol": symbol})
            position = next((p for p in _tuple(positions, "positions")
                             if isinstance(p, Position) and p.symbol == symbol), None)
            return BrokerAccount(quote_available=collateral.net_equity_available,
                                 quote_locked=collateral.net_equity_locked, base_total=None,
                                 position=position, collateral=collateral)
        balances = await self._rest.signed("GET", "/api/v1/capital")
        by_asset = {b.asset: b for b in _tuple(balances, "balances") if isinstance(b, Balance)}
        q = by_asset.get(quote)
        b = by_asset.get(base)
        return BrokerAccount(
            quote_available=q.available if q else _ZERO, quote_locked=q.locked if q else _ZERO,
            base_total=(b.available + b.locked) if b else _ZERO, position=None, collateral=None)


def _tuple(value: object, what: str) -> tuple[object, ...]:
    if not isinstance(value, tuple):
        raise RemoteProtocolError(f"{what}: expected a list, got {type(value).__name__}")
    return value


_INITIAL_QUOTE_KEY = "paper:initial_quote"


class PaperBroker:
    """Local fills against the live book; IOC semantics; balances derived from the journal's fills.

    ``filters`` are the real market's (fetch them once with :meth:`ExchangeBroker.filters` on a public client).
    ``initial_quote`` is stored in the journal on first use and ignored afterwards, so a restart keeps the
    paper account. Every order of this process is remembered for lookups; an attempt journaled by an earlier
    process that never got an answer is, correctly, unknown to the paper exchange (it never executed).
    """

    def __init__(self, *, market: LatestValue[MarketView], journal: Journal, filters: MarketFilters,
                 taker_fee: Decimal, initial_quote: Decimal, now_ms: Callable[[], int]) -> None:
        self._market = market
        self._journal = journal
        self._filters = filters
        self._taker_fee = taker_fee
        self._now_ms = now_ms
        stored = journal.get_meta(_INITIAL_QUOTE_KEY)
        if stored is None:
            journal.set_meta(_INITIAL_QUOTE_KEY, str(initial_quote))
            stored = str(initial_quote)
        self._initial_quote = Decimal(stored)
        self._orders: dict[int, Order] = {}
        self._fills: dict[str, tuple[Fill, ...]] = {}

    @property
    def kind(self) -> str:
        return "paper"

    def absent_after_ms(self, sent_by_ms: int) -> int:
        # The paper exchange lives in this process: an order it does not remember never executed.
        return sent_by_ms

    async def filters(self, symbol: str) -> MarketFilters:
        await trio.lowlevel.checkpoint()
        return self._filters

    def _balances(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(quote, base) from the initial quote and every journaled fill of ``symbol``."""
        base_asset, quote_asset = split_symbol(symbol)
        quote = self._initial_quote
        base = _ZERO
        for stored in self._journal.fills_since(0, symbol=symbol):
            f = stored.fill
            sign = 1 if stored.side.value == "Bid" else -1
            base += sign * f.qty
            quote -= sign * f.qty * f.price
            if f.fee_asset == quote_asset:
                quote -= f.fee
            elif f.fee_asset == base_asset:
                base -= f.fee
        return quote, base

    async def submit(self, order: OrderRecord) -> Order:
        await trio.lowlevel.checkpoint()
        base_asset, quote_asset = split_symbol(order.symbol)
        if order.limit_price is None:
            raise InvariantViolation("paper orders are limit IOC")
        buy = order.side.value == "Bid"
        quote, base = self._balances(order.symbol)
        if buy and order.qty * order.limit_price * (1 + self._taker_fee) > quote:
            raise OrderRejected("INSUFFICIENT_FUNDS", "Insufficient funds", 400)
        if not buy and order.qty > base:
            raise OrderRejected("INSUFFICIENT_FUNDS", "Insufficient funds", 400)
        levels: tuple[tuple[Decimal, Decimal], ...] = ()
        try:
            _v, view = self._market.get_nowait()
            book = view.market(order.symbol).book
        except (trio.WouldBlock, KeyError):
            book = None
        if book is not None and book.fresh:
            levels = book_levels(buy=buy, best_bid=book.best_bid, best_ask=book.best_ask, bid_size=book.bid_size,
                                 ask_size=book.ask_size, bid_depth=book.bid_depth, ask_depth=book.ask_depth,
                                 depth_bps=book.depth_bps)
        result = fill_ioc(buy=buy, qty=order.qty, limit_price=order.limit_price, levels=levels,
                          step=self._filters.step_size, taker_fee=self._taker_fee, base_asset=base_asset,
                          quote_asset=quote_asset)
        now_ms = self._now_ms()
        order_id = f"paper-{order.client_id}"
        side = Side.BID if buy else Side.ASK
        fills = tuple(
            Fill(trade_id=order.client_id * 1000 + n, order_id=order_id, client_id=str(order.client_id), symbol=order.symbol, side=side,
                 price=f.price, quantity=f.qty, fee=f.fee, fee_symbol=f.fee_asset, is_maker=False,
                 timestamp_us=now_ms * 1000, system_order_type=None)
            for n, f in enumerate(result.fills))
        self._fills[order_id] = fills
        status = OrderStatus.FILLED if not result.expired else OrderStatus.EXPIRED
        reply = Order(order_id=order_id, client_id=order.client_id, symbol=order.symbol, side=side,
                      order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC, status=status, quantity=order.qty,
                      quote_quantity=None, price=order.limit_price, executed_quantity=result.filled_qty,
                      executed_quote_quantity=result.filled_quote, created_at_us=now_ms * 1000,
                      expiry_reason="ImmediateOrCancel" if result.expired else None)
        self._orders[order.client_id] = reply
        return reply

    async def find(self, order: OrderRecord) -> Order | None:
        await trio.lowlevel.checkpoint()
        return self._orders.get(order.client_id)

    async def fills_of(self, symbol: str, exchange_order_id: str) -> tuple[Fill, ...]:
        await trio.lowlevel.checkpoint()
        return self._fills.get(exchange_order_id, ())

    async def recent_fills(self, symbol: str) -> tuple[Fill, ...]:
        await trio.lowlevel.checkpoint()
        return tuple(f for fills in self._fills.values() for f in fills if f.symbol == symbol)

    async def open_orders(self, symbol: str) -> tuple[Order, ...]:
        await trio.lowlevel.checkpoint()
        return ()  # IOC only: nothing ever rests on the paper exchange

    async def cancel(self, symbol: str, exchange_order_id: str) -> None:
        await trio.lowlevel.checkpoint()

    async def cancel_all(self, symbol: str) -> tuple[Order, ...]:
        await trio.lowlevel.checkpoint()
        return ()

    async def account(self, symbol: str, market_type: str) -> BrokerAccount:
        await trio.lowlevel.checkpoint()
        quote, base = self._balances(symbol)
        return BrokerAccount(quote_available=quote, quote_locked=_ZERO, base_total=base, position=None,
                             collateral=None)
