"""The orders actor: idempotent execution of approved intents, fills to the strategy, the account snapshot.

Owns the live :class:`~engine.orders.fsm.OrderTracker`, the attempts and fills in the journal, and the published
:class:`~engine.events.AccountSnapshot`. Invariants:

* **Persist, then send.** An attempt is journaled in SENT (one commit) before its POST; its ``clientId`` is
  ``client_id_for(intent_id, attempt)`` with ``attempt = journal.next_attempt(intent_id)``.
* **Never resend blindly.** A submit that times out or loses its response makes the attempt UNKNOWN; it is
  resolved by a lookup by ``clientId`` (open orders, then order history) or by an exchange event. Only a
  lookup made after the signed request's ``timestamp + window`` (:meth:`Broker.absent_after_ms`) may conclude
  "absent"; only then, and only while no CancelAll arrived since the command, is a new attempt sent.
* **Fills are facts.** Trades come from the private order stream and the fills history, deduplicated by trade
  id through the state machine; every changed outcome is journaled. Each terminal attempt yields exactly one
  :class:`~engine.events.FillNotice` (its total filled quantity and average price, zero for an IOC that found
  nothing), once its trades add up to what the exchange reported; ``notice:<client id>`` in the journal's
  metadata remembers that it was sent.
* **Reconciled before trading.** On start and after every reconnect announced on ``reconnects`` (a counter
  the feed increments), journaled open attempts are resolved, orphan open orders of ours cancelled, missing
  fills recorded and balances/positions refreshed; no command is handled meanwhile and the snapshot says
  ``reconciled=False``.
* An intent whose earlier attempt already filled is never sent again (its notice is repeated instead), so a
  strategy that lost a notice in a crash cannot double its position.

Live safety: this actor never decides whether live trading is allowed (the wiring picks the broker); it logs
the broker kind at start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NoReturn

import attrs
import trio

from actors.brokers import Broker, BrokerAccount, split_symbol
from engine.backpack import Fill, MarketFilters, Order, Position
from engine.backpack.events import BalanceUpdate, OrderEventKind, OrderUpdate, PositionUpdate
from engine.backpack.events import Side as WireSide
from engine.backpack.filters import quantize_price, quantize_quantity
from engine.config import OrdersConfig
from engine.errors import (
    ApiError,
    AuthError,
    ExchangeUnavailable,
    InvariantViolation,
    RemoteProtocolError,
    TransientError,
)
from engine.events import AccountEvent, AccountSnapshot, CancelAll, FillNotice, OrderCommand, PlaceOrder
from engine.market.prices import Price
from engine.market.view import MarketView
from engine.nanpin.types import FillReport, OrderIntent
from engine.orders.fsm import (
    Accepted,
    Cancelled,
    Expired,
    FillEvent,
    LookupFound,
    LookupNotFound,
    OrderEvent,
    OrderRecord,
    OrderTracker,
    Rejected,
    Side,
    Status,
    Submitted,
    TimedOut,
    apply_event,
    new_order,
    status_from_exchange,
)
from engine.orders.ids import client_id_for
from engine.runtime import LatestValue
from engine.store.journal import Journal

__all__ = ["OrdersActor", "events_from_order", "events_from_update", "fill_from_history", "run_orders"]

log = logging.getLogger("engine.orders")

_ZERO = Decimal(0)
_NOTICE_PREFIX = "notice:"
_ABSENT = "not found on the exchange"
# Retry delay of a lookup that failed for transport reasons (bounded by cfg.max_attempts).
_LOOKUP_RETRY_S = 0.5
# Pauses before asking fills history again when it lags the order's reported executed quantity.
_HISTORY_RETRY_S = (0.5, 1.0, 2.0)
#: Least time between two re-pricings of the equity on market moves (each one sums the journal's fills).
_REPRICE_INTERVAL_S = 0.5


# --------------------------------------------------------------------------------------------------------
# Wire -> state machine events (pure helpers, tested directly)


def fill_from_history(fill: Fill) -> FillEvent | None:
    """A fills-history row as a FillEvent; None for a row without trade id (cannot be deduplicated)."""
    if fill.trade_id is None:
        return None
    return FillEvent(trade_id=str(fill.trade_id), qty=fill.quantity, price=fill.price, fee=fill.fee,
                     fee_asset=fill.fee_symbol, is_maker=fill.is_maker, ts_ms=fill.timestamp_us // 1000,
                     exchange_order_id=fill.order_id)


def events_from_order(reply: Order) -> list[OrderEvent]:
    """What a submit response or a lookup says, as state machine events (trades come separately)."""
    status = status_from_exchange(str(reply.status))
    if status is Status.EXPIRED:
        return [Accepted(exchange_order_id=reply.order_id),
                Expired(reason=reply.expiry_reason or "", executed_qty=reply.executed_quantity,
                        exchange_order_id=reply.order_id)]
    if status is Status.CANCELLED:
        return [Accepted(exchange_order_id=reply.order_id),
                Cancelled(executed_qty=reply.executed_quantity, exchange_order_id=reply.order_id)]
    return [LookupFound(status=status, executed_qty=reply.executed_quantity, exchange_order_id=reply.order_id,
                        executed_quote_qty=reply.executed_quote_quantity)]


def events_from_update(update: OrderUpdate) -> list[OrderEvent]:
    """One ``account.orderUpdate`` as state machine events (empty for kinds that do not change our view)."""
    match update.kind:
        case OrderEventKind.ACCEPTED:
            return [Accepted(exchange_order_id=update.order_id)]
        case OrderEventKind.FILL:
            if (update.trade_id is None or update.fill_quantity is None or update.fill_price is None
                    or update.fee is None or update.fee_symbol is None):
                raise RemoteProtocolError(f"orderFill of {update.order_id} without trade fields")
            return [FillEvent(trade_id=str(update.trade_id), qty=update.fill_quantity, price=update.fill_price,
                              fee=update.fee, fee_asset=update.fee_symbol, is_maker=bool(update.is_maker),
                              ts_ms=update.event_time_us // 1000, exchange_order_id=update.order_id)]
        case OrderEventKind.CANCELLED:
            return [Cancelled(executed_qty=update.executed_quantity, exchange_order_id=update.order_id)]
        case OrderEventKind.EXPIRED:
            return [Expired(reason=update.expiry_reason or "", executed_qty=update.executed_quantity,
                            exchange_order_id=update.order_id)]
        case OrderEventKind.MODIFIED | OrderEventKind.TRIGGER_PLACED | OrderEventKind.TRIGGER_FAILED:
            return []
        case _:
            raise InvariantViolation(f"unhandled order event kind {update.kind!r}")


def _intent_payload(intent: OrderIntent) -> dict[str, Any]:
    return {"intent_id": intent.intent_id, "symbol": intent.symbol, "side": intent.side,
            "qty": str(intent.qty), "limit_price": str(intent.limit_price), "level": intent.level,
            "swing_key": intent.swing_key, "entry_leverage": str(intent.entry_leverage)}


# --------------------------------------------------------------------------------------------------------
# The actor


@attrs.frozen(kw_only=True)
class _Position:
    qty: Decimal
    avg_entry: Decimal


class OrdersActor:
    """State and behaviour of one orders actor run (see :func:`run_orders`); public for tests."""

    def __init__(self, cfg: OrdersConfig, *, broker: Broker, journal: Journal, symbol: str, market_type: str,
                 fills_out: trio.MemorySendChannel[FillNotice], account: LatestValue[AccountSnapshot],
                 now_ms: Callable[[], int], market: LatestValue[MarketView] | None = None,
                 notices: Callable[[OrderRecord], None] | None = None) -> None:
        if market_type not in ("spot", "perp"):
            raise InvariantViolation(f"market_type must be spot or perp; got {market_type!r}")
        self.cfg = cfg
        self.broker = broker
        self.journal = journal
        self.symbol = symbol
        self.market_type = market_type
        self._fills_out = fills_out
        self._account = account
        self._now_ms = now_ms
        self._market = market
        self._notices = notices
        self.base_asset, self.quote_asset = split_symbol(symbol)
        self.tracker = OrderTracker()
        self.filters: MarketFilters | None = None
        self.reconciled = False
        self._lock = trio.Lock()  # one placement or reconciliation at a time
        self._cancel_generation = 0
        self._absent_after: dict[int, int] = {}
        self._notified: set[int] = set()
        self._settling: set[int] = set()
        self._intents: dict[str, dict[str, Any]] = {}
        self._quote_available = _ZERO
        self._quote_locked = _ZERO
        self._position: Position | None = None
        self._net_equity: Decimal | None = None
        self._published_equity: Decimal | None = None
        self._mmf: Decimal | None = None
        self._imf: Decimal | None = None

    # -- state machine plumbing -----------------------------------------------------------------------

    def _track(self, order: OrderRecord) -> OrderRecord:
        known = self.tracker.get(order.client_id)
        if known is not None:
            return known
        self.tracker.add(order)
        return order

    def _lookup_tracked(self, client_id: int) -> OrderRecord | None:
        known = self.tracker.get(client_id)
        if known is not None:
            return known
        stored = self.journal.load_order(client_id)
        if stored is None or stored.symbol != self.symbol:
            return None
        if self.journal.get_meta(_NOTICE_PREFIX + str(client_id)) is not None:
            self._notified.add(client_id)
        return self._track(stored)

    def _apply(self, client_id: int, event: OrderEvent) -> OrderRecord:
        outcome = self.tracker.apply(client_id, event)
        if outcome.changed:
            self.journal.record_event(outcome.order, event)
            if outcome.previous is not outcome.order.status:
                log.info("order %s (%s#%d): %s -> %s", client_id, outcome.order.intent_id, outcome.order.attempt,
                         outcome.previous.value, outcome.order.status.value)
            if self._notices is not None:
                self._notices(outcome.order)
        return outcome.order

    def _order(self, client_id: int) -> OrderRecord:
        order = self.tracker.get(client_id)
        if order is None:
            raise InvariantViolation(f"untracked client id {client_id}")
        return order

    # -- placing ----------------------------------------------------------------------------------------

    async def place(self, cmd: PlaceOrder) -> None:
        """Execute one approved intent: at most one live attempt at a time, a new one only after proof."""
        intent = cmd.intent
        if intent.symbol != self.symbol:
            raise InvariantViolation(f"intent {intent.intent_id} is for {intent.symbol}, actor trades {self.symbol}")
        payload = _intent_payload(intent)
        self.journal.record_intent(intent.intent_id, intent.symbol, payload)
        self._intents[intent.intent_id] = payload
        for prior in self.journal.load_orders_by_intent(intent.intent_id):
            prior = self._lookup_tracked(prior.client_id) or prior
            if prior.is_open:
                log.info("intent %s: attempt %d still %s; resolving before anything else", intent.intent_id,
                         prior.attempt, prior.status.value)
                await self._resolve(prior.client_id)
                await self._settle(prior.client_id)
        filled = [o for o in self.journal.load_orders_by_intent(intent.intent_id) if o.filled_qty > 0]
        if filled:
            log.warning("intent %s already filled (%s); not sent again", intent.intent_id,
                        ", ".join(f"#{o.attempt}: {o.filled_qty}" for o in filled))
            for order in filled:
                await self._settle(self._track(order).client_id, repeat=True)
            return
        generation = self._cancel_generation
        side = Side.BUY if intent.side.upper() in ("BUY", "BID") else Side.SELL
        filters = await self._filters()
        qty = quantize_quantity(intent.qty, filters.step_size)
        price = quantize_price(intent.limit_price, filters.tick_size,
                               WireSide.BID if side is Side.BUY else WireSide.ASK)
        for _ in range(self.cfg.max_attempts):
            attempt = self.journal.next_attempt(intent.intent_id)
            if qty <= 0 or (filters.min_quantity is not None and qty < filters.min_quantity):
                log.warning("intent %s: quantity %s below the market minimum; not sent", intent.intent_id, qty)
                await self._emit_unsent(intent, attempt, "REJECTED")
                return
            order = apply_event(new_order(intent_id=intent.intent_id, attempt=attempt, symbol=self.symbol,
                                          side=side, qty=qty, limit_price=price, created_ms=self._now_ms()),
                                Submitted()).order
            self.journal.record_attempt(order)  # SENT is durable before the request leaves
            self.tracker.add(order)
            await self._submit(order)
            if self._order(order.client_id).status is Status.UNKNOWN:
                await self._resolve(order.client_id)
            final = self._order(order.client_id)
            if final.status is Status.REJECTED and final.reason == _ABSENT:
                self._mark_notified(final.client_id)  # proven never to exist: nothing to report for it
                if generation != self._cancel_generation:
                    log.info("intent %s: withdrawn by CancelAll after attempt %d proved absent", intent.intent_id,
                             attempt)
                    await self._emit_unsent(intent, attempt, "CANCELLED")
                    return
                log.info("intent %s: attempt %d proved absent; sending attempt %d", intent.intent_id, attempt,
                         attempt + 1)
                continue
            await self._settle(final.client_id, patient=True)
            return
        log.error("intent %s: %d attempts proved absent; giving up", intent.intent_id, self.cfg.max_attempts)
        await self._emit_unsent(intent, self.journal.next_attempt(intent.intent_id), "REJECTED")

    async def _filters(self) -> MarketFilters:
        if self.filters is None:
            try:
                with trio.fail_after(self.cfg.lookup_timeout_s):
                    self.filters = await self.broker.filters(self.symbol)
            except trio.TooSlowError as exc:
                raise ExchangeUnavailable(f"market filters of {self.symbol} timed out") from exc
        return self.filters

    async def _submit(self, order: OrderRecord) -> None:
        reply: Order | None = None
        failure: OrderEvent | None = None
        fatal: ApiError | None = None
        try:
            with trio.fail_after(self.cfg.ack_timeout_s):
                reply = await self.broker.submit(order)
        except trio.TooSlowError:
            failure = TimedOut()
        except (ExchangeUnavailable, RemoteProtocolError) as exc:
            # 5xx, transport failure or a lost/garbled response: the order may exist.
            log.warning("order %s: submit outcome unknown: %s", order.client_id, exc)
            failure = TimedOut()
        except ApiError as exc:
            failure = Rejected(code=exc.code, message=exc.message)
            if isinstance(exc, AuthError):
                fatal = exc
        if isinstance(failure, TimedOut):
            self._absent_after[order.client_id] = self.broker.absent_after_ms(self._now_ms())
        if failure is not None:
            current = self._order(order.client_id)
            if current.status is Status.SENT or isinstance(failure, TimedOut):
                self._apply(order.client_id, failure)
            if fatal is not None:
                raise fatal
            return
        assert reply is not None
        if reply.client_id is not None and reply.client_id != order.client_id:
            raise InvariantViolation(f"submit of {order.client_id} answered for client id {reply.client_id}")
        for event in events_from_order(reply):
            self._apply(order.client_id, event)

    async def _resolve(self, client_id: int) -> None:
        """Settle an attempt whose fate is unknown (SENT after a restart, UNKNOWN) by looking it up."""
        failures = 0
        while True:
            order = self._order(client_id)
            if order.status not in (Status.SENT, Status.UNKNOWN):
                return
            try:
                with trio.fail_after(self.cfg.lookup_timeout_s):
                    found = await self.broker.find(order)
            except (trio.TooSlowError, TransientError, RemoteProtocolError) as exc:
                failures += 1
                log.warning("order %s: lookup %d failed: %s", client_id, failures, exc)
                if failures >= self.cfg.max_attempts:
                    raise ExchangeUnavailable(
                        f"order {client_id} is unknown after {failures} failed lookups") from exc
                await trio.sleep(_LOOKUP_RETRY_S * failures)
                continue
            order = self._order(client_id)
            if order.status not in (Status.SENT, Status.UNKNOWN):
                return  # an exchange event resolved it while we looked
            if found is not None:
                for event in events_from_order(found):
                    self._apply(client_id, event)
                return
            absent_after = self._absent_after.get(client_id)
            if absent_after is None:
                # Restored from the journal: the request was signed right after its SENT row was written.
                absent_after = self.broker.absent_after_ms(order.created_ms + int(self.cfg.ack_timeout_s * 1000))
            wait_ms = absent_after - self._now_ms()
            if wait_ms > 0:
                # Not found yet, but the exchange could still accept the request: look again after its window.
                await trio.sleep(wait_ms / 1000)
                continue
            self._apply(client_id, LookupNotFound())
            return

    # -- fills and notices ----------------------------------------------------------------------------

    def _mark_notified(self, client_id: int) -> None:
        self._notified.add(client_id)
        self.journal.set_meta(_NOTICE_PREFIX + str(client_id), "sent")

    async def _settle(self, client_id: int, *, repeat: bool = False, patient: bool = False) -> None:
        """For a terminal attempt: cross-check its trades with fills history, then send its one notice.

        When the trades do not yet add up to what the exchange reported, the notice waits for them (a WS fill
        or the next reconciliation settles it); ``patient`` (the placing path, never the event loop) also asks
        fills history again a few times, for an exchange whose history lags its order status.
        """
        order = self._order(client_id)
        if order.is_open or client_id in self._settling:
            return
        if not repeat and (client_id in self._notified
                           or self.journal.get_meta(_NOTICE_PREFIX + str(client_id)) is not None):
            self._notified.add(client_id)
            return
        self._settling.add(client_id)
        try:
            if order.exchange_order_id is not None and order.reported_filled_qty > 0:
                await self._fetch_fills(order)
                for delay in _HISTORY_RETRY_S if patient else ():
                    if self._order(client_id).filled_qty >= order.reported_filled_qty:
                        break
                    await trio.sleep(delay)
                    await self._fetch_fills(self._order(client_id))
            order = self._order(client_id)
            if client_id in self._notified and not repeat:
                return  # a WS fill completed it while we asked history
            if order.filled_qty < order.reported_filled_qty:
                log.info("order %s: %s of %s filled reported; waiting for the trades", client_id,
                         order.filled_qty, order.reported_filled_qty)
                return
            await self._notify(order)
        finally:
            self._settling.discard(client_id)

    async def _fetch_fills(self, order: OrderRecord) -> None:
        assert order.exchange_order_id is not None
        try:
            with trio.fail_after(self.cfg.lookup_timeout_s):
                rows = await self.broker.fills_of(self.symbol, order.exchange_order_id)
        except (trio.TooSlowError, TransientError, RemoteProtocolError) as exc:
            log.warning("order %s: fills history unavailable: %s", order.client_id, exc)
            return
        for row in rows:
            event = fill_from_history(row)
            if event is not None and self._order(order.client_id).fill_for(event.trade_id) is None:
                log.info("order %s: trade %s from fills history", order.client_id, event.trade_id)
                self._apply(order.client_id, event)

    def _intent(self, intent_id: str) -> dict[str, Any]:
        payload = self._intents.get(intent_id) or self.journal.load_intent(intent_id) or {}
        self._intents[intent_id] = payload
        return payload

    async def _notify(self, order: OrderRecord) -> None:
        intent = self._intent(order.intent_id)
        report = FillReport(
            intent_id=order.intent_id, level=str(intent.get("level", "")),
            swing_key=str(intent.get("swing_key", "")), filled_qty=order.filled_qty,
            avg_price=order.avg_price or _ZERO, ts=datetime.fromtimestamp(self._now_ms() / 1000, tz=UTC),
            entry_leverage=Decimal(str(intent.get("entry_leverage", "1"))),
            side="BUY" if order.side is Side.BUY else "SELL")
        self._mark_notified(order.client_id)
        # Balances and position already include these trades when the strategy reads the notice.
        await self._refresh_account()
        log.info("order %s (%s#%d) %s: filled %s at %s", order.client_id, order.intent_id, order.attempt,
                 order.status.value, order.filled_qty, report.avg_price)
        await self._fills_out.send(FillNotice(report=report, client_id=order.client_id,
                                              terminal_status=order.status.value))

    async def _emit_unsent(self, intent: OrderIntent, attempt: int, status: str) -> None:
        report = FillReport(intent_id=intent.intent_id, level=intent.level, swing_key=intent.swing_key,
                            filled_qty=_ZERO, avg_price=_ZERO,
                            ts=datetime.fromtimestamp(self._now_ms() / 1000, tz=UTC),
                            entry_leverage=intent.entry_leverage,
                            side="BUY" if intent.side.upper() in ("BUY", "BID") else "SELL")
        await self._fills_out.send(FillNotice(report=report, client_id=client_id_for(intent.intent_id, attempt),
                                              terminal_status=status))

    # -- exchange events ------------------------------------------------------------------------------

    async def on_account_event(self, event: AccountEvent) -> None:
        match event:
            case OrderUpdate():
                if event.symbol != self.symbol or event.client_id is None:
                    return
                order = self._lookup_tracked(event.client_id)
                if order is None:
                    log.debug("order update for foreign client id %s ignored", event.client_id)
                    return
                for wire_event in events_from_update(event):
                    self._apply(order.client_id, wire_event)
                current = self._order(order.client_id)
                if not current.is_open:
                    await self._settle(current.client_id)
            case BalanceUpdate():
                if event.asset == self.quote_asset and self.market_type == "spot":
                    self._quote_available = event.available
                    self._quote_locked = event.locked
                    self.publish()
            case PositionUpdate():
                if event.symbol == self.symbol and self.market_type == "perp":
                    self._position = Position(
                        symbol=event.symbol, position_id=event.position_id, net_quantity=event.net_quantity,
                        net_cost=None, entry_price=event.entry_price, break_even_price=event.break_even_price,
                        mark_price=event.mark_price, est_liquidation_price=event.est_liquidation_price,
                        net_exposure_quantity=event.net_exposure_quantity,
                        net_exposure_notional=event.net_exposure_notional, pnl_realized=event.pnl_realized,
                        pnl_unrealized=event.pnl_unrealized, cumulative_funding_payment=None, imf=event.imf,
                        mmf=event.mmf)
                    self.publish()
            case _:
                raise InvariantViolation(f"unexpected account event {event!r}")

    # -- cancelling -----------------------------------------------------------------------------------

    async def cancel_all(self, reason: str) -> None:
        self._cancel_generation += 1
        log.warning("cancel all %s orders: %s", self.symbol, reason)
        cancelled = await self.broker.cancel_all(self.symbol)
        for row in cancelled:
            if row.client_id is not None and self._lookup_tracked(row.client_id) is not None:
                self._apply(row.client_id, Cancelled(executed_qty=row.executed_quantity,
                                                     exchange_order_id=row.order_id))
                await self._settle(row.client_id)

    # -- reconciliation -------------------------------------------------------------------------------

    async def reconcile(self, why: str) -> None:
        """Bring the journal and the exchange into agreement before any new order (see the module doc)."""
        self.reconciled = False
        self.publish()
        log.info("reconciling %s with the %s broker (%s)", self.symbol, self.broker.kind, why)
        for stored in self.journal.load_open_orders():
            if stored.symbol == self.symbol:
                self._track(stored)
        for order in self.tracker.open_orders():
            if order.status is Status.NEW:
                log.info("order %s was journaled but never sent: withdrawn", order.client_id)
                self._apply(order.client_id, Cancelled())
                self._mark_notified(order.client_id)
                continue
            await self._resolve(order.client_id)
            current = self._order(order.client_id)
            if current.is_open and current.exchange_order_id is not None:
                log.warning("order %s rests on the book (%s): cancelling", current.client_id, current.status.value)
                await self.broker.cancel(self.symbol, current.exchange_order_id)
                self._apply(current.client_id, Cancelled(exchange_order_id=current.exchange_order_id))
            await self._settle(order.client_id)
        if self.cfg.reconcile_on_start:
            try:
                await self._reconcile_exchange()
            except trio.TooSlowError as exc:
                raise ExchangeUnavailable(f"reconciliation of {self.symbol} timed out") from exc
        await self._refresh_account(required=True)
        self.reconciled = True
        self.publish()
        log.info("reconciled %s: %d open attempts, position %s", self.symbol, len(self.tracker.open_orders()),
                 self._strategy_position().qty)

    async def _reconcile_exchange(self) -> None:
        with trio.fail_after(self.cfg.lookup_timeout_s):
            resting = await self.broker.open_orders(self.symbol)
        for row in resting:
            ours = row.client_id is not None and self._lookup_tracked(row.client_id) is not None
            if not ours:
                log.warning("open order %s (client id %s) is not ours: left alone", row.order_id, row.client_id)
                continue
            assert row.client_id is not None
            log.warning("orphan open order %s of ours (client id %s): cancelling", row.order_id, row.client_id)
            await self.broker.cancel(self.symbol, row.order_id)
            order = self._order(row.client_id)
            if order.is_open:
                self._apply(row.client_id, Cancelled(executed_qty=row.executed_quantity,
                                                     exchange_order_id=row.order_id))
            await self._settle(row.client_id)
        with trio.fail_after(self.cfg.lookup_timeout_s):
            fills = await self.broker.recent_fills(self.symbol)
        for fill in fills:
            if fill.client_id is None or not fill.client_id.isdigit():
                continue
            owner = self._lookup_tracked(int(fill.client_id))
            event = fill_from_history(fill)
            if owner is None or event is None or owner.fill_for(event.trade_id) is not None:
                continue
            log.warning("order %s: missing trade %s recorded from fills history", owner.client_id, event.trade_id)
            self._apply(owner.client_id, event)
            await self._settle(owner.client_id)

    async def _refresh_account(self, *, required: bool = False) -> None:
        try:
            with trio.fail_after(self.cfg.lookup_timeout_s):
                acct = await self.broker.account(self.symbol, self.market_type)
        except (trio.TooSlowError, TransientError, RemoteProtocolError) as exc:
            if required:
                raise ExchangeUnavailable(f"account state unavailable: {exc}") from exc
            log.warning("account refresh failed: %s", exc)
            self.publish()
            return
        self._take_account(acct)
        self.publish()

    def _take_account(self, acct: BrokerAccount) -> None:
        self._quote_available = acct.quote_available
        self._quote_locked = acct.quote_locked
        if acct.position is not None or acct.collateral is not None:
            self._position = acct.position
        if acct.collateral is not None:
            self._net_equity = acct.collateral.net_equity
            self._imf = acct.collateral.imf
            self._mmf = acct.collateral.mmf
        if self.market_type == "spot" and acct.base_total is not None:
            own = self._strategy_position().qty
            if acct.base_total < own:
                log.warning("wallet holds %s %s, less than the strategy's journaled %s", acct.base_total,
                            self.base_asset, own)

    # -- the snapshot ---------------------------------------------------------------------------------

    def _strategy_position(self) -> _Position:
        """Spot (and paper perp): the journal's own fills net of base-asset fees, at average cost."""
        qty = _ZERO
        cost = _ZERO
        for stored in self.journal.fills_since(0, symbol=self.symbol):
            if stored.client_id is None:
                continue
            f = stored.fill
            if stored.side is Side.BUY:
                qty += f.qty
                cost += f.qty * f.price
                if f.fee_asset == self.base_asset:
                    qty -= f.fee
                elif f.fee_asset == self.quote_asset:
                    cost += f.fee
            else:
                if qty > 0:
                    cost -= cost * min(f.qty, qty) / qty
                qty -= f.qty
                if f.fee_asset == self.base_asset:
                    qty -= f.fee
        avg = cost / qty if qty > 0 else _ZERO
        return _Position(qty=qty, avg_entry=avg)

    def _price(self) -> Decimal | None:
        if self._market is None:
            return None
        try:
            _v, view = self._market.get_nowait()
            quote = view.market(self.symbol).price
        except (trio.WouldBlock, KeyError):
            return None
        return quote.value if isinstance(quote, Price) else None

    def snapshot(self) -> AccountSnapshot:
        pos = self._position
        equity: Decimal | None
        if self.market_type == "perp" and self._net_equity is not None:
            # The exchange's own position (flat when it lists none) and its netEquity (nanpin 8, 9.6).
            qty = pos.net_quantity if pos is not None else _ZERO
            avg = (pos.entry_price if pos is not None else None) or _ZERO
            liq: Decimal | None = pos.est_liquidation_price if pos is not None else None
            mmf = pos.mmf if pos is not None and pos.mmf is not None else self._mmf
            imf = pos.imf if pos is not None and pos.imf is not None else self._imf
            equity = self._net_equity
        else:
            own = self._strategy_position()
            qty, avg, liq, mmf, imf = own.qty, own.avg_entry, None, self._mmf, self._imf
            price = self._price()
            cash = self._quote_available + self._quote_locked
            if price is None:
                equity = None
            elif self.market_type == "perp":  # paper perp: cash plus unrealised PnL
                equity = cash + qty * (price - avg)
            else:  # spot, nanpin 9.13(d)
                equity = cash + qty * price
        return AccountSnapshot(
            symbol=self.symbol, quote_available=self._quote_available, quote_locked=self._quote_locked,
            position_qty=qty, avg_entry=avg, est_liq_price=liq, mmf=mmf, imf=imf, equity=equity,
            open_orders=len(self.tracker.open_orders()), reconciled=self.reconciled, as_of_ms=self._now_ms())

    def publish(self) -> None:
        snapshot = self.snapshot()
        self._published_equity = snapshot.equity
        self._account.set(snapshot)

    async def watch_prices(self, market: LatestValue[MarketView]) -> NoReturn:
        """Re-publish the snapshot when the market moves the equity this actor prices (spot, paper perp).

        Without it the equity only changed on account events, so a falling price after an entry never
        reached risk's kill switch (or the status line) until the next order or balance update.
        """
        seen = 0
        while True:
            seen, _view = await market.wait_changed(seen)
            if self.snapshot().equity != self._published_equity:
                self.publish()
            # Conflating: later views wait in the holder, so this costs one journal read per interval at most.
            await trio.sleep(_REPRICE_INTERVAL_S)

    # -- loops ----------------------------------------------------------------------------------------

    async def handle(self, command: OrderCommand, places: trio.MemorySendChannel[tuple[int, PlaceOrder]]) -> None:
        """Dispatch one command. Placing is queued for the single place worker; CancelAll acts at once, so
        a kill switch is never stuck behind an order that is being resolved."""
        match command:
            case PlaceOrder():
                await places.send((self._cancel_generation, command))
            case CancelAll():
                await self.cancel_all(command.reason)
            case _:
                raise InvariantViolation(f"unexpected order command {command!r}")

    async def place_worker(self, places: trio.MemoryReceiveChannel[tuple[int, PlaceOrder]]) -> None:
        """Place queued intents one at a time; an intent queued before a CancelAll is dropped."""
        async with places:
            async for generation, command in places:
                if generation != self._cancel_generation:
                    log.info("intent %s withdrawn by CancelAll before it was sent", command.intent.intent_id)
                    attempt = self.journal.next_attempt(command.intent.intent_id)
                    await self._emit_unsent(command.intent, attempt, "CANCELLED")
                    continue
                async with self._lock:
                    await self.place(command)

    async def watch_reconnects(self, reconnects: LatestValue[int]) -> NoReturn:
        seen = reconnects.version  # the start-up reconciliation covers everything before now
        while True:
            seen, count = await reconnects.wait_changed(seen)
            async with self._lock:
                await self.reconcile(f"feed reconnect #{count}")

    async def account_loop(self, events: trio.MemoryReceiveChannel[AccountEvent]) -> None:
        async with events:
            async for event in events:
                await self.on_account_event(event)


async def run_orders(
    cfg: OrdersConfig,
    *,
    commands: trio.MemoryReceiveChannel[OrderCommand],
    account_events: trio.MemoryReceiveChannel[AccountEvent],
    fills_out: trio.MemorySendChannel[FillNotice],
    account: LatestValue[AccountSnapshot],
    broker: Broker,
    journal: Journal,
    symbol: str,
    market_type: str,
    now_ms: Callable[[], int],
    market: LatestValue[MarketView] | None = None,
    reconnects: LatestValue[int] | None = None,
    notices: Callable[[OrderRecord], None] | None = None,
    task_status: trio.TaskStatus[OrdersActor] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Run the orders actor until cancelled (see the module doc).

    ``reconnects`` is a counter the feed bumps on every reconnect (each new version triggers a
    reconciliation); ``market`` supplies the price for the spot equity; ``notices`` is called with every
    changed attempt (for status and metrics). Reports the :class:`OrdersActor` once started; it is not
    reconciled yet at that point (its snapshot says so) and handles no command until it is.
    """
    actor = OrdersActor(cfg, broker=broker, journal=journal, symbol=symbol, market_type=market_type,
                        fills_out=fills_out, account=account, now_ms=now_ms, market=market, notices=notices)
    log.info("orders actor for %s (%s) uses the %s broker", symbol, market_type, broker.kind)
    async with fills_out, commands:
        try:
            async with trio.open_nursery() as nursery:
                actor.publish()
                nursery.start_soon(actor.account_loop, account_events)
                task_status.started(actor)
                async with actor._lock:
                    await actor.reconcile("start")
                if reconnects is not None:
                    nursery.start_soon(actor.watch_reconnects, reconnects)
                if market is not None:
                    nursery.start_soon(actor.watch_prices, market)
                place_tx, place_rx = trio.open_memory_channel[tuple[int, PlaceOrder]](1)
                nursery.start_soon(actor.place_worker, place_rx)
                async with place_tx:
                    async for command in commands:
                        await actor.handle(command, place_tx)
                raise InvariantViolation("orders: the command channel closed")
        finally:
            with trio.move_on_after(cfg.shutdown_grace_s, shield=True) as scope:
                try:
                    await broker.cancel_all(symbol)
                except (ExchangeUnavailable, ApiError, RemoteProtocolError) as exc:
                    log.warning("shutdown cancel-all failed: %s", exc)
            if scope.cancelled_caught:
                log.warning("shutdown cancel-all did not finish within %.1f s", cfg.shutdown_grace_s)
    raise AssertionError("unreachable")
