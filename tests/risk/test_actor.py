"""The risk actor on trio's MockClock with real memory channels, LatestValues and a real SQLite journal."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from actors.risk import STATE_KEY, run_risk
from engine.config import RiskConfig
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
from engine.runtime.channels import LatestValue
from engine.store.journal import Journal
from tests.risk.factories import SPOT, D, account, intent, market_state, proposal, stale, view

EPOCH_MS = 1_700_000_000_000
GUARD_S = 120


def now_ms() -> int:
    return EPOCH_MS + int(trio.current_time() * 1000)


@attrs.define
class Harness:
    proposals: trio.MemorySendChannel[Proposal]
    control: trio.MemorySendChannel[Control]
    commands: trio.MemoryReceiveChannel[OrderCommand]
    alerts: trio.MemoryReceiveChannel[str]
    market: LatestValue[MarketView]
    account: LatestValue[AccountSnapshot]
    risk_state: LatestValue[RiskState]
    seen: int = 0

    async def next_state(self) -> RiskState:
        """The next RiskState published after the last one this harness looked at."""
        self.seen, state = await self.risk_state.wait_changed(self.seen)
        return state

    def state(self) -> RiskState:
        self.seen, state = self.risk_state.get_nowait()
        return state

    async def settle_state(self) -> RiskState:
        """Let risk finish what it is doing, then return its latest state."""
        await trio.testing.wait_all_tasks_blocked()
        return self.state()

    def fresh_market(self) -> None:
        self.market.set(view(market_state(SPOT), as_of_ms=now_ms(), as_of_s=trio.current_time()))


@asynccontextmanager
async def running(journal: Journal | None, *, cfg: RiskConfig | None = None,
                  risk_state: LatestValue[RiskState] | None = None) -> AsyncIterator[Harness]:
    prop_tx, prop_rx = trio.open_memory_channel[Proposal](0)
    ctl_tx, ctl_rx = trio.open_memory_channel[Control](0)
    cmd_tx, cmd_rx = trio.open_memory_channel[OrderCommand](0)
    alert_tx, alert_rx = trio.open_memory_channel[str](0)
    h = Harness(proposals=prop_tx, control=ctl_tx, commands=cmd_rx, alerts=alert_rx, market=LatestValue(),
                account=LatestValue(), risk_state=risk_state if risk_state is not None else LatestValue())
    actor = functools.partial(
        run_risk, cfg or RiskConfig(), proposals=prop_rx, control=ctl_rx, commands=cmd_tx, market=h.market,
        account=h.account, risk_state=h.risk_state, journal=journal, alerts=alert_tx, now_ms=now_ms,
        price_band_frac=D("0.05"), max_price_age_ms=15_000,
    )
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(actor)
            yield h
            nursery.cancel_scope.cancel(reason="test finished")


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal.open(tmp_path / "journal.sqlite", now_ms=lambda: EPOCH_MS)


async def test_approved_proposal_becomes_place_order(autojump_clock: trio.testing.MockClock) -> None:
    """A proposal that passes every rule is sent to orders as PlaceOrder, stamped with the approval time."""
    async with running(None) as h:
        await trio.sleep(5)
        h.fresh_market()
        h.account.set(account())
        i = intent()
        await h.proposals.send(proposal(i))
        command = await h.commands.receive()
        assert command == PlaceOrder(intent=i, approved_at_ms=EPOCH_MS + 5000)
        state = await h.settle_state()
        assert state.approvals == 1
        assert state.blocks == ()


async def test_stale_view_blocks_and_is_journaled(autojump_clock: trio.testing.MockClock,
                                                  journal: Journal) -> None:
    """A Stale price, or no view, blocks with STALE_PRICE, sends nothing and appends a BLOCK risk event."""
    async with running(journal) as h:
        h.account.set(account())
        await h.proposals.send(proposal(intent(n=1)))  # no market view at all
        assert dict((await h.settle_state()).blocks) == {"STALE_PRICE": 1}
        h.market.set(view(market_state(SPOT, last=stale("feed down")), as_of_ms=now_ms(), as_of_s=trio.current_time()))
        await h.proposals.send(proposal(intent(n=2)))
        state = await h.settle_state()
        assert dict(state.blocks) == {"STALE_PRICE": 2}
        assert state.approvals == 0
        with pytest.raises(trio.WouldBlock):
            h.commands.receive_nowait()
    events = journal.risk_events()
    assert [(e.kind, e.code) for e in events] == [("BLOCK", "STALE_PRICE")] * 2
    assert events[0].payload["intent_id"] == intent(n=1).intent_id
    assert "no market view" in events[0].detail
    assert "feed down" in events[1].detail


async def test_view_that_stops_updating_goes_stale(autojump_clock: trio.testing.MockClock) -> None:
    """A view not refreshed for longer than max_price_age_ms blocks although it still holds a Price."""
    async with running(None) as h:
        h.fresh_market()
        h.account.set(account())
        await h.proposals.send(proposal(intent(n=1)))
        assert isinstance(await h.commands.receive(), PlaceOrder)
        await trio.sleep(15.001)
        await h.proposals.send(proposal(intent(n=2)))
        state = await h.settle_state()
        assert dict(state.blocks) == {"STALE_PRICE": 1}


async def test_equity_drop_trips_kill_switch(autojump_clock: trio.testing.MockClock, journal: Journal) -> None:
    """Drawdown past the threshold sends CancelAll and an alert, latches the kill switch and blocks entries."""
    async with running(journal) as h:
        h.fresh_market()
        h.account.set(account(equity=D("10000")))
        assert (await h.settle_state()).peak_equity == D("10000")
        h.account.set(account(equity=D("4001")))  # drawdown 0.5999 < 0.60
        state = await h.settle_state()
        assert not state.kill_switch
        assert state.drawdown_frac == D("0.5999")
        h.account.set(account(equity=D("4000")))  # drawdown 0.60: trips
        command = await h.commands.receive()
        assert isinstance(command, CancelAll)
        assert "kill switch" in command.reason
        alert = await h.alerts.receive()
        assert "kill switch" in alert
        state = h.state()
        assert state.kill_switch
        assert state.halted
        await h.proposals.send(proposal(intent()))
        state = await h.settle_state()
        assert dict(state.blocks) == {"KILL_SWITCH": 1}
        with pytest.raises(trio.WouldBlock):
            h.commands.receive_nowait()
    assert [(e.kind, e.code) for e in journal.risk_events()] == [("HALT", "KILL_SWITCH"), ("BLOCK", "KILL_SWITCH")]


async def test_unreconciled_equity_is_ignored(autojump_clock: trio.testing.MockClock) -> None:
    """An equity from an account not yet reconciled neither sets the peak nor trips the switch."""
    async with running(None) as h:
        h.account.set(account(equity=D("10000")))
        await trio.testing.wait_all_tasks_blocked()
        h.account.set(account(equity=D("1"), reconciled=False))
        state = await h.settle_state()
        assert not state.kill_switch
        assert state.equity == D("10000")


async def test_halt_and_resume(autojump_clock: trio.testing.MockClock, journal: Journal) -> None:
    """Halt cancels resting orders, alerts and blocks entries; Resume lets the next entry through."""
    async with running(journal) as h:
        h.fresh_market()
        h.account.set(account())
        await h.control.send(Halt(reason="maintenance"))
        assert await h.commands.receive() == CancelAll(reason="operator halt: maintenance")
        assert "maintenance" in await h.alerts.receive()
        state = h.state()
        assert state.halted
        assert state.halt_reason == "maintenance"
        await h.proposals.send(proposal(intent(n=1)))
        assert dict((await h.settle_state()).blocks) == {"HALTED": 1}
        await h.control.send(Resume(reason="done"))
        assert "done" in await h.alerts.receive()
        assert not (await h.settle_state()).halted
        await h.proposals.send(proposal(intent(n=2)))
        command = await h.commands.receive()
        assert isinstance(command, PlaceOrder)
        assert command.intent == intent(n=2)
    kinds = [(e.kind, e.code) for e in journal.risk_events()]
    assert kinds == [("HALT", "HALTED"), ("BLOCK", "HALTED"), ("RESUME", "RESUMED")]


async def _trip(h: Harness) -> None:
    h.account.set(account(equity=D("10000")))
    await trio.testing.wait_all_tasks_blocked()
    h.account.set(account(equity=D("1000")))
    assert isinstance(await h.commands.receive(), CancelAll)
    await h.alerts.receive()


async def test_engine_restart_keeps_latch_and_peak(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    """After a trip, a new engine (new journal connection, new LatestValues) starts latched with the old peak,
    higher equity does not unlatch it, and a resume is itself persisted."""
    path = tmp_path / "journal.sqlite"
    with Journal.open(path, now_ms=now_ms) as first:
        async with running(first) as h:
            await _trip(h)
    with Journal.open(path, now_ms=now_ms) as second:
        async with running(second) as h:
            state = h.state()
            assert state.kill_switch
            assert state.peak_equity == D("10000")
            h.fresh_market()
            h.account.set(account(equity=D("12000")))
            state = await h.settle_state()
            assert state.kill_switch
            assert state.peak_equity == D("10000")
            await h.proposals.send(proposal(intent()))
            assert dict((await h.settle_state()).blocks) == {"KILL_SWITCH": 1}
            await h.control.send(Resume())
            await h.alerts.receive()
            assert (await h.settle_state()).peak_equity == D("12000")
    with Journal.open(path, now_ms=now_ms) as third:
        record = third.load_strategy_state(STATE_KEY)
        assert record is not None
        assert record.blob["kill_reason"] is None
        async with running(third) as h:
            assert not h.state().halted
            assert h.state().peak_equity == D("12000")


async def test_actor_restart_without_journal_keeps_latch(autojump_clock: trio.testing.MockClock) -> None:
    """An actor restart that keeps the RiskState holder (no journal) comes back latched with its counters."""
    published: LatestValue[RiskState] = LatestValue()
    async with running(None, risk_state=published) as h:
        await _trip(h)
    async with running(None, risk_state=published) as h:
        state = h.state()
        assert state.kill_switch
        assert state.peak_equity == D("10000")
        h.fresh_market()
        await h.proposals.send(proposal(intent()))
        assert dict((await h.settle_state()).blocks) == {"KILL_SWITCH": 1}


async def test_rate_window_survives_restart(autojump_clock: trio.testing.MockClock, journal: Journal) -> None:
    """Approvals inside the last minute still count after a restart, and free up once the minute has passed."""
    cfg = RiskConfig(max_orders_per_minute=1)
    async with running(journal, cfg=cfg) as h:
        h.fresh_market()
        h.account.set(account())
        await h.proposals.send(proposal(intent(n=1)))
        assert isinstance(await h.commands.receive(), PlaceOrder)
    async with running(journal, cfg=cfg) as h:
        h.fresh_market()
        h.account.set(account())
        await h.proposals.send(proposal(intent(n=2)))
        assert dict((await h.settle_state()).blocks) == {"RATE_LIMIT": 1}
        await trio.sleep(60)
        h.fresh_market()
        await h.proposals.send(proposal(intent(n=3)))
        assert isinstance(await h.commands.receive(), PlaceOrder)


async def test_alerts_channel_closed_does_not_stop_risk(autojump_clock: trio.testing.MockClock) -> None:
    """A notifier that went away loses the alert, but risk still cancels orders and keeps checking."""
    async with running(None) as h:
        await h.alerts.aclose()
        await h.control.send(Halt(reason="x"))
        assert isinstance(await h.commands.receive(), CancelAll)
        assert (await h.settle_state()).halted
        with pytest.raises(trio.WouldBlock):
            h.commands.receive_nowait()



async def test_proposal_racing_an_equity_drop_is_never_approved(autojump_clock: trio.testing.MockClock) -> None:
    """A proposal sent right after a drawdown snapshot sees the tripped switch: CancelAll comes, PlaceOrder never."""
    async with running(None) as h:
        h.fresh_market()
        h.account.set(account(equity=D("10000")))
        await trio.testing.wait_all_tasks_blocked()
        h.account.set(account(equity=D("1000")))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.proposals.send, proposal(intent()))
            assert isinstance(await h.commands.receive(), CancelAll)
            await h.alerts.receive()
        state = await h.settle_state()
        assert dict(state.blocks) == {"KILL_SWITCH": 1}
        with pytest.raises(trio.WouldBlock):
            h.commands.receive_nowait()
