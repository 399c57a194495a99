"""The strategy actor: runs the pure nanpin ``decide()`` on the latest market view and account snapshot.

Owns the strategy's persisted :class:`~engine.nanpin.StrategyState` (one task mutates it), the ``proposals``
send end and the ``fills`` receive end. Invariants:

* **A restart changes nothing.** The state and the set of outstanding proposals are loaded from the journal at
  start (``load_strategy_state(STATE_KEY)``) and saved after every change, before anything that depends on
  the change is sent.
* **When it decides:** on the first complete input; on a schedule (every ``decide_interval_s`` and at each
  00:00 UTC daily close, both by ``trio.sleep_until``); when a new closed daily bar appears in the view; at
  once when the price enters the band of an unfilled level of the last decision (found by waiting on
  ``market.wait_changed``, never by polling); when a reference price returns after a decision that was
  blocked as PRICE_STALE; when the account changes materially (position, quote balances,
  reconciliation); and after every fill. The decision time is the injected ``now_ms()``; nothing here reads
  a wall clock.
* **At most one outstanding proposal per intent.** An intent is proposed once and then held until its
  ``FillNotice`` arrives. Risk may block a proposal without answering, so a hold older than
  ``proposal_timeout_s`` is released only if the journal shows no attempt of the intent that is still open or
  has filled anything; otherwise the actor keeps waiting for the notice (never a duplicate order).
* **No deadlock with the order path.** Proposals go through a small internal outbox to a sender task, so the
  main task never blocks on ``proposals.send`` while the orders actor blocks on sending a fill to it. The
  outbox holds one entry per level at most; when it is full the intent is not marked outstanding and the next
  decision proposes it again (nothing is queued without bound).
* Proposals are sent only from a reconciled account snapshot (execution layer rule, nanpin spec 8).
* ``StrategyStatus`` is published after every decision; BLOCK reasons are logged once per change of the set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any, NoReturn

import attrs
import trio

from engine.errors import InvariantViolation
from engine.events import AccountSnapshot, FillNotice, Proposal, StrategyStatus
from engine.market.view import MarketView
from engine.nanpin import Decision, MarketRules, NanpinConfig, OrderIntent, StrategyState, apply_fill, decide
from engine.runtime.channels import LatestValue
from engine.store.journal import Journal
from engine.strategy_inputs import (
    DAY_MS,
    decision_input,
    reference_price,
    state_from_blob,
    state_to_blob,
    strategy_status,
)

__all__ = ["CLOSE_DELAY_S", "STATE_KEY", "run_strategy", "state_key"]

STATE_KEY = "nanpin"
#: Seconds after 00:00 UTC at which the daily-close decision runs (the closing kline frame needs a moment).
CLOSE_DELAY_S = 1.0

logger = logging.getLogger("engine.strategy")


def state_key(symbol: str) -> str:
    """Journal key of the strategy state of one market."""
    return f"{STATE_KEY}:{symbol}"


@attrs.frozen(kw_only=True)
class _MarketChanged:
    version: int
    view: MarketView


@attrs.frozen(kw_only=True)
class _AccountChanged:
    snapshot: AccountSnapshot


@attrs.frozen(kw_only=True)
class _Tick:
    reason: str


_Input = _MarketChanged | _AccountChanged | FillNotice | _Tick


def _material(snapshot: AccountSnapshot) -> tuple[Any, ...]:
    """What of a snapshot a decision depends on beyond the price (equity moves with every tick)."""
    return (snapshot.position_qty, snapshot.avg_entry, snapshot.quote_available, snapshot.quote_locked,
            snapshot.reconciled, snapshot.est_liq_price)


async def _watch_market(market: LatestValue[MarketView], tx: trio.MemorySendChannel[_Input]) -> NoReturn:
    # Conflates by construction: while the main task is busy, newer views replace older ones in the holder.
    async with tx:
        seen = 0
        while True:
            seen, view = await market.wait_changed(seen)
            await tx.send(_MarketChanged(version=seen, view=view))


async def _watch_account(account: LatestValue[AccountSnapshot], tx: trio.MemorySendChannel[_Input]) -> NoReturn:
    async with tx:
        seen = 0
        while True:
            seen, snapshot = await account.wait_changed(seen)
            await tx.send(_AccountChanged(snapshot=snapshot))


async def _forward_fills(fills: trio.MemoryReceiveChannel[FillNotice], tx: trio.MemorySendChannel[_Input]) -> None:
    async with tx:
        async for notice in fills:
            await tx.send(notice)


async def _schedule(tx: trio.MemorySendChannel[_Input], now_ms: Callable[[], int], interval_s: float) -> NoReturn:
    """Tick every ``interval_s`` (anchored, no drift) and just after each 00:00 UTC close."""
    async with tx:
        next_tick = trio.current_time() + interval_s
        while True:
            to_close_s = (DAY_MS - now_ms() % DAY_MS) / 1000 + CLOSE_DELAY_S
            close_at = trio.current_time() + to_close_s
            if close_at < next_tick:
                await trio.sleep_until(close_at)
                await tx.send(_Tick(reason="daily close"))
            else:
                await trio.sleep_until(next_tick)
                next_tick += interval_s
                await tx.send(_Tick(reason="schedule"))


async def _send_proposals(outbox: trio.MemoryReceiveChannel[Proposal],
                          proposals: trio.MemorySendChannel[Proposal]) -> None:
    async with outbox:
        async for proposal in outbox:
            # Backpressure: a slow risk/order path holds this task here, never the decision loop.
            await proposals.send(proposal)


class _Strategy:
    """The actor's state and handlers; used only by the actor's main task."""

    def __init__(self, cfg: NanpinConfig, *, rules: MarketRules, journal: Journal, now_ms: Callable[[], int],
                 status: LatestValue[StrategyStatus], outbox: trio.MemorySendChannel[Proposal],
                 proposal_timeout_s: float) -> None:
        self.cfg = cfg
        self.rules = rules
        self.journal = journal
        self.now_ms = now_ms
        self.status = status
        self.outbox = outbox
        self.timeout_ms = int(proposal_timeout_s * 1000)
        self.key = state_key(cfg.market.symbol)
        self.state, self.outstanding = self._load()
        self.view: MarketView | None = None
        self.snapshot: AccountSnapshot | None = None
        self.decided = False
        self.decided_account: tuple[Any, ...] | None = None
        self.decided_bar: int | None = None
        # Unfilled level bands of the last decision, and the band the last seen price was in.
        self.bands: tuple[tuple[str, Decimal, Decimal], ...] = ()
        self.in_band: str | None = None
        self.priced = False  # whether the last seen view had a reference price
        self.blocks: frozenset[str] | None = None
        self.held_logged: set[str] = set()

    # -- persistence -----------------------------------------------------------------------------------

    def _load(self) -> tuple[StrategyState, dict[str, int]]:
        record = self.journal.load_strategy_state(self.key)
        if record is None:
            return StrategyState(), {}
        try:
            state = state_from_blob(record.blob["state"])
            outstanding = record.blob["outstanding"]
            if not isinstance(outstanding, dict) or not all(
                    isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                    for k, v in outstanding.items()):
                raise ValueError(f"outstanding must map intent ids to ms; got {outstanding!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise InvariantViolation(f"journal holds a malformed strategy state under {self.key!r}: {exc}") from exc
        logger.info("restored strategy state v%d: swing %s, filled %s, %d entries, %d outstanding",
                    record.version, state.swing_key, sorted(state.filled_levels), state.entries_total,
                    len(outstanding))
        return state, dict(outstanding)

    def persist(self) -> None:
        self.journal.save_strategy_state(self.key, {"state": state_to_blob(self.state),
                                                    "outstanding": dict(sorted(self.outstanding.items()))})

    # -- inputs ----------------------------------------------------------------------------------------

    def _last_bar_start(self, view: MarketView) -> int | None:
        try:
            candles = view.market(self.cfg.market.symbol).closed_candles("1d")
        except KeyError:
            return None
        return candles[-1].start_ms if candles else None

    def _price_of(self, view: MarketView) -> Decimal | None:
        try:
            state = view.market(self.cfg.market.symbol)
        except KeyError:
            return None
        price = reference_price(state, view.as_of_ms, perp=self.cfg.is_perp)
        return None if price is None else price.value

    def _band_of(self, view: MarketView) -> str | None:
        price = self._price_of(view)
        if price is None:
            return None
        return next((name for name, lo, hi in self.bands if lo <= price <= hi), None)

    async def on_market(self, message: _MarketChanged) -> None:
        self.view = message.view
        band = self._band_of(message.view)
        entered = band is not None and band != self.in_band
        self.in_band = band
        priced = self._price_of(message.view) is not None
        # A decision blocked for want of a price has no bands to wait for; the price's return must wake it.
        regained = priced and not self.priced and self.blocks is not None and "PRICE_STALE" in self.blocks
        self.priced = priced
        if not self.decided:
            await self.decide("first input")
        elif self._last_bar_start(message.view) != self.decided_bar:
            await self.decide("new daily bar")
        elif entered:
            await self.decide(f"price entered the band of level {band}")
        elif regained:
            await self.decide("price available again")

    async def on_account(self, message: _AccountChanged) -> None:
        self.snapshot = message.snapshot
        if not self.decided:
            await self.decide("first input")
        elif _material(message.snapshot) != self.decided_account:
            await self.decide("account changed")

    async def on_fill(self, notice: FillNotice) -> None:
        report = notice.report
        before = self.state
        self.state = apply_fill(self.state, report, self.cfg)
        released = self.outstanding.pop(report.intent_id, None) is not None
        self.held_logged.discard(report.intent_id)
        if self.state != before or released:
            self.persist()
        logger.info("fill notice %s (client %d, %s): %s @ %s", report.intent_id, notice.client_id,
                    notice.terminal_status, report.filled_qty, report.avg_price)
        await self.decide("fill")

    # -- deciding --------------------------------------------------------------------------------------

    async def decide(self, reason: str) -> None:
        view, snapshot = self.view, self.snapshot
        if view is None or snapshot is None:
            return
        now = self.now_ms()
        inputs = decision_input(self.cfg, view, snapshot, self.rules, now_ms=now,
                                view_age_s=trio.current_time() - view.as_of_s)
        decision = decide(inputs, self.state, self.cfg)
        self.decided = True
        self.decided_account = _material(snapshot)
        self.decided_bar = self._last_bar_start(view)
        if decision.next_state != self.state:
            self.state = decision.next_state
            self.persist()
        self.bands = tuple((lv.name, lv.band_lo, lv.band_hi) for lv in decision.diag.levels
                           if lv.name not in self.state.filled_levels)
        self.in_band = self._band_of(view)
        self._log_blocks(decision, reason)
        self.status.set(strategy_status(decision, self.state, self.cfg.market.symbol, now))
        self._release_expired(now)
        if decision.intents and not snapshot.reconciled:
            logger.info("holding %d intent(s): the account is not reconciled yet", len(decision.intents))
            return
        for intent in decision.intents:
            self._propose(intent, now, view.version)

    def _log_blocks(self, decision: Decision, reason: str) -> None:
        blocks = decision.codes("BLOCK") | decision.codes("HALT")
        if blocks == self.blocks:
            return
        self.blocks = blocks
        if blocks:
            details = "; ".join(f"{e.code}: {e.detail}" for e in decision.events if e.code in blocks)
            logger.info("entries blocked (%s): %s", reason, details)
        else:
            logger.info("entries unblocked (%s)", reason)

    def _release_expired(self, now: int) -> None:
        """Drop holds older than the timeout whose intent has no live or filled attempt in the journal."""
        released = False
        for intent_id, sent_ms in sorted(self.outstanding.items()):
            if now - sent_ms < self.timeout_ms:
                continue
            attempts = self.journal.load_orders_by_intent(intent_id)
            if any(a.is_open or a.filled_qty > 0 or a.reported_filled_qty > 0 for a in attempts):
                if intent_id not in self.held_logged:
                    self.held_logged.add(intent_id)
                    logger.warning("no fill notice for %s after %d s; its order is open or filled in the "
                                   "journal, waiting for the notice", intent_id, (now - sent_ms) // 1000)
                continue
            logger.warning("no fill notice for %s after %d s and no live or filled attempt in the journal "
                           "(blocked by risk?); it may be proposed again", intent_id, (now - sent_ms) // 1000)
            del self.outstanding[intent_id]
            self.held_logged.discard(intent_id)
            released = True
        if released:
            self.persist()

    def _propose(self, intent: OrderIntent, now: int, view_version: int) -> None:
        if intent.intent_id in self.outstanding:
            return
        proposal = Proposal(intent=intent, decided_at_ms=now, view_version=view_version)
        try:
            self.outbox.send_nowait(proposal)
        except trio.WouldBlock:
            logger.warning("proposal outbox full; %s is proposed again at the next decision", intent.intent_id)
            return
        self.outstanding[intent.intent_id] = now
        self.persist()
        logger.info("proposed %s: %s %s %s @ limit %s (%s)", intent.intent_id, intent.side, intent.qty,
                    intent.symbol, intent.limit_price, intent.reason)

    async def handle(self, item: _Input) -> None:
        match item:
            case _MarketChanged():
                await self.on_market(item)
            case _AccountChanged():
                await self.on_account(item)
            case FillNotice():
                await self.on_fill(item)
            case _Tick(reason=reason):
                await self.decide(reason)
            case _:
                raise InvariantViolation(f"strategy received an unknown message {item!r}")


async def run_strategy(
    cfg: NanpinConfig,
    *,
    market: LatestValue[MarketView],
    account: LatestValue[AccountSnapshot],
    fills: trio.MemoryReceiveChannel[FillNotice],
    proposals: trio.MemorySendChannel[Proposal],
    status: LatestValue[StrategyStatus],
    journal: Journal,
    now_ms: Callable[[], int],
    rules: MarketRules,
    decide_interval_s: float = 60.0,
    proposal_timeout_s: float = 300.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Decide on schedule and on events, propose intents, book fills; never returns.

    ``rules`` are the market's filters (``engine.strategy_inputs.market_rules`` of the exchange's
    ``/api/v1/markets`` row). Ready once the persisted state is loaded.
    """
    if decide_interval_s <= 0 or proposal_timeout_s <= 0:
        raise InvariantViolation(f"decide_interval_s and proposal_timeout_s must be > 0; got "
                                 f"{decide_interval_s}, {proposal_timeout_s}")
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(fills)
        await stack.enter_async_context(proposals)
        outbox_tx, outbox_rx = trio.open_memory_channel[Proposal](len(cfg.levels) + 1)
        actor = _Strategy(cfg, rules=rules, journal=journal, now_ms=now_ms, status=status, outbox=outbox_tx,
                          proposal_timeout_s=proposal_timeout_s)
        inbox_tx, inbox_rx = trio.open_memory_channel[_Input](0)
        async with trio.open_nursery() as nursery, inbox_rx, outbox_tx:
            nursery.start_soon(_send_proposals, outbox_rx, proposals)
            nursery.start_soon(_forward_fills, fills, inbox_tx.clone())
            nursery.start_soon(_watch_market, market, inbox_tx.clone())
            nursery.start_soon(_watch_account, account, inbox_tx.clone())
            nursery.start_soon(_schedule, inbox_tx.clone(), now_ms, decide_interval_s)
            inbox_tx.close()
            task_status.started()
            async for item in inbox_rx:
                await actor.handle(item)
    raise InvariantViolation("strategy: every input closed (the schedule never stops, so this is a bug)")
