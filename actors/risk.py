"""The risk actor: every proposal passes :func:`engine.risk.rules.check` before it can become an order.

Owns the :class:`~engine.risk.rules.RiskBook` (one task mutates it, so each decision sees one consistent state)
and the ``commands`` send end. Invariants:

* Every proposal is answered exactly once: a ``PlaceOrder`` on ``commands``, or a block that is logged once
  (WARNING, with its code and reason) and appended to the journal as a ``BLOCK`` risk event.
* Before each decision the latest account snapshot is observed, so a drawdown that trips the kill switch is
  acted on before, never after, the next approval.
* Tripping the kill switch and an operator ``Halt`` do three things, in this order: publish the new
  ``RiskState`` (so the strategy sees it first), send ``CancelAll`` to the orders actor, send an alert.
  ``Resume`` clears both latches (re-basing the peak after a trip, see ``engine.risk.rules.resume``). Each of
  these is also a journal risk event (``HALT``/``KILL_SWITCH``, ``HALT``/``HALTED``, ``RESUME``/``RESUMED``).
* Alerts are best effort: a closed notifier channel is logged and risk carries on.
* ``RiskState`` is published after every change, and once before readiness.
* Restart safety: the peak equity, the halt/kill latches and the rate window are saved in the journal
  (``save_strategy_state("risk", ...)``) whenever they change, and restored on start, so both an actor restart
  and an engine restart keep a latched kill switch. Without a journal an actor restart still restores from
  the last published ``RiskState``.
* Equity is observed only from reconciled snapshots: an account not yet reconciled may report a partial
  equity, which would otherwise trip a false kill switch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any, NoReturn, Protocol

import attrs
import trio

from engine.config import RiskConfig
from engine.errors import InvariantViolation
from engine.events import (
    AccountSnapshot,
    CancelAll,
    Control,
    Halt,
    OrderCommand,
    PlaceOrder,
    Proposal,
    Resume,
    RiskState,
)
from engine.market.view import MarketView
from engine.risk.rules import (
    Approve,
    Block,
    RiskBook,
    RiskLimits,
    check,
    current_quote,
    halt,
    observe_equity,
    resume,
)
from engine.risk.rules import (
    risk_state as risk_state_of,
)
from engine.runtime.channels import LatestValue
from engine.store.journal import StrategyStateRecord

__all__ = ["STATE_KEY", "RiskJournal", "run_risk"]

logger = logging.getLogger("engine.risk")

# Key of risk's blob in the journal's strategy_state table.
STATE_KEY = "risk"


class RiskJournal(Protocol):
    """The part of :class:`engine.store.journal.Journal` risk uses."""

    def record_risk_event(self, *, kind: str, code: str, detail: str,
                          payload: Mapping[str, Any] | None = None) -> int: ...

    def save_strategy_state(self, key: str, blob: Mapping[str, Any]) -> int: ...

    def load_strategy_state(self, key: str) -> StrategyStateRecord | None: ...


@attrs.frozen(kw_only=True)
class _AccountChanged:
    """Internal wake-up: the account snapshot has a new version (read the latest, not this one's)."""


_Input = Proposal | Halt | Resume | _AccountChanged


def _restore(journal: RiskJournal | None, published: LatestValue[RiskState]) -> RiskBook:
    book = RiskBook()
    try:
        _, state = published.get_nowait()
    except trio.WouldBlock:
        pass
    else:
        book = RiskBook.from_state(state)
    if journal is not None:
        record = journal.load_strategy_state(STATE_KEY)
        if record is not None:
            try:
                saved = RiskBook.restored(record.blob)
            except ValueError as exc:
                raise InvariantViolation(f"journal holds a malformed risk state: {exc}") from exc
            book = attrs.evolve(book, halt_reason=saved.halt_reason, kill_reason=saved.kill_reason,
                                peak_equity=saved.peak_equity, approved_ms=saved.approved_ms)
    return book


async def _forward(rx: trio.MemoryReceiveChannel[Proposal] | trio.MemoryReceiveChannel[Control],
                   tx: trio.MemorySendChannel[_Input]) -> None:
    async with tx:
        async for item in rx:
            await tx.send(item)


async def _watch_account(account: LatestValue[AccountSnapshot], tx: trio.MemorySendChannel[_Input]) -> NoReturn:
    async with tx:
        seen = 0
        while True:
            seen, _ = await account.wait_changed(seen)
            await tx.send(_AccountChanged())


class _Risk:
    """The actor's state and handlers; used only by the actor's main task."""

    def __init__(self, limits: RiskLimits, *, commands: trio.MemorySendChannel[OrderCommand],
                 market: LatestValue[MarketView], account: LatestValue[AccountSnapshot],
                 published: LatestValue[RiskState], journal: RiskJournal | None,
                 alerts: trio.MemorySendChannel[str] | None, now_ms: Callable[[], int], book: RiskBook) -> None:
        self.limits = limits
        self.commands = commands
        self.market = market
        self.account = account
        self.published = published
        self.journal = journal
        self.alerts = alerts
        self.now_ms = now_ms
        self.book = book
        self.saved: dict[str, Any] | None = None
        self.account_seen = 0

    def publish(self) -> None:
        self.published.set(risk_state_of(self.book, self.now_ms()))

    def persist(self) -> None:
        blob = self.book.persisted()
        if self.journal is not None and blob != self.saved:
            self.journal.save_strategy_state(STATE_KEY, blob)
        self.saved = blob

    def record(self, kind: str, code: str, detail: str, payload: Mapping[str, Any] | None = None) -> None:
        if self.journal is not None:
            self.journal.record_risk_event(kind=kind, code=code, detail=detail, payload=payload)

    async def alert(self, text: str) -> None:
        if self.alerts is None:
            return
        try:
            await self.alerts.send(text)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The notifier is gone; the event is already logged and journaled, so risk carries on.
            logger.error("alert not delivered (notifier channel closed): %s", text)

    async def observe_account(self) -> None:
        """Observe the latest reconciled equity; trip the kill switch when the drawdown reaches the limit."""
        try:
            version, snapshot = self.account.get_nowait()
        except trio.WouldBlock:
            return
        if version == self.account_seen:
            return
        self.account_seen = version
        if not snapshot.reconciled or snapshot.equity is None:
            return
        before = self.book
        self.book, tripped = observe_equity(self.book, snapshot.equity, self.limits)
        self.persist()
        if tripped:
            reason = self.book.kill_reason or "kill switch"
            logger.error("kill switch tripped: %s", reason)
            self.record("HALT", "KILL_SWITCH", reason,
                        {"equity": snapshot.equity, "peak_equity": self.book.peak_equity})
            self.publish()
            await self.commands.send(CancelAll(reason=f"kill switch: {reason}"))
            await self.alert(f"risk: kill switch tripped, entries halted and resting orders cancelled: {reason}")
        elif self.book != before:
            self.publish()

    async def on_proposal(self, proposal: Proposal) -> None:
        await self.observe_account()
        now = self.now_ms()
        intent = proposal.intent
        try:
            _, view = self.market.get_nowait()
        except trio.WouldBlock:
            view = None
        view_age_s = trio.current_time() - view.as_of_s if view is not None else 0.0
        quote = current_quote(view, intent.symbol, view_age_s, self.limits.max_price_age_ms)
        try:
            _, snapshot = self.account.get_nowait()
        except trio.WouldBlock:
            snapshot = None
        outcome = check(self.book, proposal, quote, snapshot, now, self.limits)
        self.book = outcome.book
        match outcome.verdict:
            case Approve():
                self.persist()
                self.publish()
                await self.commands.send(PlaceOrder(intent=intent, approved_at_ms=now))
            case Block(code=code, detail=detail):
                logger.warning("blocked %s (%s %s %s): %s %s", intent.intent_id, intent.side, intent.qty,
                               intent.symbol, code.value, detail)
                self.record("BLOCK", code.value, detail,
                            {"intent_id": intent.intent_id, "symbol": intent.symbol, "side": intent.side,
                             "qty": intent.qty, "limit_price": intent.limit_price,
                             "view_version": proposal.view_version, "decided_at_ms": proposal.decided_at_ms})
                self.publish()
            case _:
                raise InvariantViolation(f"unknown risk verdict {outcome.verdict!r}")

    async def on_halt(self, message: Halt) -> None:
        self.book = halt(self.book, message.reason)
        self.persist()
        logger.warning("operator halt: %s", message.reason)
        self.record("HALT", "HALTED", message.reason)
        self.publish()
        await self.commands.send(CancelAll(reason=f"operator halt: {message.reason}"))
        await self.alert(f"risk: halted by operator, resting orders cancelled: {message.reason}")

    async def on_resume(self, message: Resume) -> None:
        was = self.book
        self.book = resume(self.book)
        self.persist()
        logger.warning("resumed (%s); peak equity re-based to %s", message.reason, self.book.peak_equity)
        self.record("RESUME", "RESUMED", message.reason,
                    {"halt_reason": was.halt_reason, "kill_reason": was.kill_reason,
                     "peak_equity": self.book.peak_equity})
        self.publish()
        await self.alert(f"risk: resumed by operator: {message.reason}")

    async def handle(self, item: _Input) -> None:
        match item:
            case Proposal():
                await self.on_proposal(item)
            case Halt():
                await self.on_halt(item)
            case Resume():
                await self.on_resume(item)
            case _AccountChanged():
                await self.observe_account()
            case _:
                raise InvariantViolation(f"risk received an unknown message {item!r}")


async def run_risk(
    cfg: RiskConfig,
    *,
    proposals: trio.MemoryReceiveChannel[Proposal],
    control: trio.MemoryReceiveChannel[Control],
    commands: trio.MemorySendChannel[OrderCommand],
    market: LatestValue[MarketView],
    account: LatestValue[AccountSnapshot],
    risk_state: LatestValue[RiskState],
    journal: RiskJournal | None,
    alerts: trio.MemorySendChannel[str] | None,
    now_ms: Callable[[], int],
    price_band_frac: Decimal,
    max_price_age_ms: int,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Check every proposal, watch equity for the kill switch, obey Halt/Resume; never returns.

    ``price_band_frac`` bounds ``|limit - price| / price``; ``max_price_age_ms`` is the oldest price (age in
    the view plus the view's age by ``now_ms``) risk accepts. Ready once the restored state is published.
    """
    limits = RiskLimits.from_config(cfg, price_band_frac=price_band_frac, max_price_age_ms=max_price_age_ms)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(proposals)
        await stack.enter_async_context(control)
        await stack.enter_async_context(commands)
        if alerts is not None:
            await stack.enter_async_context(alerts)
        actor = _Risk(limits, commands=commands, market=market, account=account, published=risk_state,
                      journal=journal, alerts=alerts, now_ms=now_ms, book=_restore(journal, risk_state))
        actor.persist()
        actor.publish()
        if actor.book.halted:
            logger.warning("starting halted: %s", actor.book.kill_reason or actor.book.halt_reason)
        inbox_tx, inbox_rx = trio.open_memory_channel[_Input](0)
        async with trio.open_nursery() as nursery, inbox_rx:
            nursery.start_soon(_forward, control, inbox_tx.clone())
            nursery.start_soon(_forward, proposals, inbox_tx.clone())
            nursery.start_soon(_watch_account, account, inbox_tx.clone())
            inbox_tx.close()
            task_status.started()
            async for item in inbox_rx:
                await actor.handle(item)
    raise InvariantViolation("risk: every input closed (the account watcher never stops, so this is a bug)")
