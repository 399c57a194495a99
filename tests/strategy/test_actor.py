"""The strategy actor on virtual time with real channels, LatestValues and a real SQLite journal."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

from actors.strategy import run_strategy, state_key
from engine.events import AccountSnapshot, FillNotice, Proposal, StrategyStatus
from engine.market.view import MarketView
from engine.nanpin import FillReport, NanpinConfig, StrategyState
from engine.runtime.channels import LatestValue
from engine.store.journal import Journal
from engine.strategy_inputs import state_from_blob
from tests.nanpin.scenarios import NOW, PERP_RULES, example_bars, spot_cfg
from tests.strategy.builders import book, candles_of, snapshot, state_of, view_of

NOW_MS = int(NOW.timestamp() * 1000)
OUTSIDE = Decimal(116000)  # no level's band contains it (see the section 6 ladder)
IN_BAND = Decimal(98200)  # in the 61.8 band; spot buys 61.8 there (spec 9.13 f)


@attrs.define
class Rig:
    """One actor's surroundings: holders, channel ends the test keeps, the journal and the virtual clock."""

    cfg: NanpinConfig
    journal: Journal
    base_ms: int
    t0: float
    market: LatestValue[MarketView] = attrs.Factory(LatestValue)
    account: LatestValue[AccountSnapshot] = attrs.Factory(LatestValue)
    status: LatestValue[StrategyStatus] = attrs.Factory(LatestValue)
    proposals: list[tuple[float, Proposal]] = attrs.Factory(list)

    def now_ms(self) -> int:
        return self.base_ms + round((trio.current_time() - self.t0) * 1000)

    def elapsed(self) -> float:
        return trio.current_time() - self.t0

    def publish(self, px: Decimal) -> None:
        """A fresh view (its price observed now) with the section 6 bars."""
        state = state_of("BTC_USDC", candles=candles_of(example_bars()), book_summary=book(px, age_s=0.0))
        self.market.set(view_of(state, version=self.market.version + 1, as_of_ms=self.now_ms(),
                                as_of_s=trio.current_time()))


@asynccontextmanager
async def running(rig: Rig, *, interval: float = 60.0) -> AsyncIterator[trio.MemorySendChannel[FillNotice]]:
    """Run one actor (and a proposal collector) until the block ends; yields the fills send end."""
    fills_tx, fills_rx = trio.open_memory_channel[FillNotice](0)
    prop_tx, prop_rx = trio.open_memory_channel[Proposal](0)

    async def collect() -> None:
        async for proposal in prop_rx:
            rig.proposals.append((rig.elapsed(), proposal))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect)
        await nursery.start(functools.partial(
            run_strategy, rig.cfg, market=rig.market, account=rig.account, fills=fills_rx, proposals=prop_tx,
            status=rig.status, journal=rig.journal, now_ms=rig.now_ms, rules=PERP_RULES,
            decide_interval_s=interval))
        async with fills_tx:
            yield fills_tx
        nursery.cancel_scope.cancel(reason="test over")


async def keep_fresh(rig: Rig, px: Decimal, until_s: float) -> None:
    """Republish the view every 10 s, offset by 5 s from the decision schedule, until ``until_s``."""
    await trio.sleep_until(rig.t0 + 5)
    while rig.elapsed() < until_s:
        rig.publish(px)
        await trio.sleep(10)


async def decisions_until(rig: Rig, until_s: float) -> list[int]:
    """Offsets (ms from the base) of every status published before ``until_s`` of virtual time."""
    seen = rig.status.version
    times = []
    with trio.move_on_at(rig.t0 + until_s):
        while True:
            seen, status = await rig.status.wait_changed(seen)
            times.append(status.decided_at_ms - rig.base_ms)
    return times


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "journal.sqlite", now_ms=lambda: NOW_MS) as j:
        yield j


def make_rig(journal: Journal, *, base_ms: int = NOW_MS) -> Rig:
    return Rig(cfg=spot_cfg(), journal=journal, base_ms=base_ms, t0=trio.current_time())


def fill_for(proposal: Proposal, *, at: int, qty: Decimal | None = None) -> FillNotice:
    intent = proposal.intent
    report = FillReport(intent_id=intent.intent_id, level=intent.level, swing_key=intent.swing_key,
                        filled_qty=intent.qty if qty is None else qty, avg_price=intent.ref_price,
                        ts=NOW + timedelta(milliseconds=at - NOW_MS), entry_leverage=intent.entry_leverage)
    return FillNotice(report=report, client_id=intent.client_id, terminal_status="FILLED")


def saved_state(rig: Rig) -> tuple[StrategyState, dict[str, int]]:
    record = rig.journal.load_strategy_state(state_key("BTC_USDC"))
    assert record is not None
    return state_from_blob(record.blob["state"]), record.blob["outstanding"]


async def test_decides_on_the_interval_schedule(autojump_clock: trio.testing.MockClock, journal: Journal) -> None:
    """With no events, decisions run at the first input and then every decide_interval_s exactly."""
    rig = make_rig(journal)
    rig.publish(OUTSIDE)
    rig.account.set(snapshot())
    with trio.fail_after(1000):
        async with running(rig):
            times = await decisions_until(rig, 185)
    assert times == [0, 60_000, 120_000, 180_000]


async def test_decides_just_after_the_daily_close(autojump_clock: trio.testing.MockClock, journal: Journal) -> None:
    """Thirty seconds before 00:00 UTC the next decision comes at the close (+1 s), not at the interval."""
    day = NOW_MS - NOW_MS % 86_400_000
    rig = make_rig(journal, base_ms=day + 86_400_000 - 30_000)
    rig.publish(OUTSIDE)
    rig.account.set(snapshot())
    with trio.fail_after(1000):
        async with running(rig):
            times = await decisions_until(rig, 65)
    assert times == [0, 31_000, 60_000]


async def test_price_entering_a_band_decides_at_once(autojump_clock: trio.testing.MockClock,
                                                     journal: Journal) -> None:
    """A view whose price enters an unfilled level's band triggers a decision and a proposal immediately."""
    rig = make_rig(journal)
    rig.publish(OUTSIDE)
    rig.account.set(snapshot())
    with trio.fail_after(1000):
        async with running(rig):
            await trio.sleep(10)
            assert rig.proposals == []
            rig.publish(Decimal(116500))  # still outside every band: no extra decision
            await trio.sleep(1)
            assert rig.status.get_nowait()[1].decided_at_ms == NOW_MS
            rig.publish(IN_BAND)
            await trio.sleep(1)
            assert len(rig.proposals) == 1
            at, proposal = rig.proposals[0]
            assert at == 11
            assert proposal.intent.level == "61.8"
            assert proposal.decided_at_ms == NOW_MS + 11_000
            assert proposal.view_version == rig.market.get_nowait()[1].version
            status = rig.status.get_nowait()[1]
            assert status.decided_at_ms == NOW_MS + 11_000
            assert status.blocks == ()


async def test_one_outstanding_proposal_per_intent(autojump_clock: trio.testing.MockClock,
                                                   journal: Journal) -> None:
    """Decisions that keep producing the same intent propose it once until its fill notice arrives."""
    rig = make_rig(journal)
    rig.publish(IN_BAND)
    rig.account.set(snapshot())
    with trio.fail_after(1000):
        async with running(rig):
            await keep_fresh(rig, IN_BAND, 185)  # keep the price fresh so every decision is unblocked
            status = rig.status.get_nowait()[1]
    assert status.decided_at_ms == NOW_MS + 180_000
    assert status.blocks == ()
    assert [p.intent.intent_id for _, p in rig.proposals] == [rig.proposals[0][1].intent.intent_id]
    _, outstanding = saved_state(rig)
    assert outstanding == {rig.proposals[0][1].intent.intent_id: NOW_MS}


async def test_fill_notice_updates_and_persists_state(autojump_clock: trio.testing.MockClock,
                                                      journal: Journal) -> None:
    """A FillNotice is applied with apply_fill, saved to the journal and releases the outstanding mark."""
    rig = make_rig(journal)
    rig.publish(IN_BAND)
    rig.account.set(snapshot())
    with trio.fail_after(1000):
        async with running(rig) as fills:
            await trio.sleep(1)
            (_, proposal), = rig.proposals
            await fills.send(fill_for(proposal, at=rig.now_ms()))
            await trio.sleep(1)
            state, outstanding = saved_state(rig)
            assert state.filled_levels == {"61.8"}
            assert state.entries_total == 1
            assert state.last_entry_at == NOW + timedelta(seconds=1)
            assert outstanding == {}
            assert rig.status.get_nowait()[1].entries_total == 1


async def test_restart_reloads_state_and_never_reproposes_a_filled_level(
        autojump_clock: trio.testing.MockClock, journal: Journal) -> None:
    """A restarted actor restores the saved state and, with the price still in band, proposes nothing."""
    rig = make_rig(journal)
    rig.publish(IN_BAND)
    rig.account.set(snapshot())
    with trio.fail_after(1000):
        async with running(rig) as fills:
            await trio.sleep(1)
            (_, proposal), = rig.proposals
            await fills.send(fill_for(proposal, at=rig.now_ms()))
            await trio.sleep(1)
        before = saved_state(rig)
        rig.account.set(snapshot(quote=10000 - 1290, qty=proposal.intent.qty, avg=int(IN_BAND)))
        async with running(rig):
            await keep_fresh(rig, IN_BAND, rig.elapsed() + 125)
    assert len(rig.proposals) == 1
    after = saved_state(rig)
    assert after[0].filled_levels == before[0].filled_levels == {"61.8"}
    assert after[0].entries_total == 1
    assert after[1] == {}
    assert "COOLDOWN" in rig.status.get_nowait()[1].blocks


async def test_restart_keeps_an_outstanding_proposal_held(autojump_clock: trio.testing.MockClock,
                                                          journal: Journal) -> None:
    """A proposal still waiting for its fill when the actor restarts is not proposed a second time."""
    rig = make_rig(journal)
    rig.publish(IN_BAND)
    rig.account.set(snapshot())
    with trio.fail_after(1000):
        async with running(rig):
            await trio.sleep(1)
        async with running(rig):
            await keep_fresh(rig, IN_BAND, rig.elapsed() + 125)
    assert len(rig.proposals) == 1


async def test_unanswered_proposal_is_released_after_the_timeout(autojump_clock: trio.testing.MockClock,
                                                                  journal: Journal) -> None:
    """With no notice and no attempt in the journal (risk blocked it), the intent is proposed again."""
    rig = make_rig(journal)
    rig.publish(IN_BAND)
    rig.account.set(snapshot())
    with trio.fail_after(1000):
        async with running(rig):
            await keep_fresh(rig, IN_BAND, 365)
    assert [at for at, _ in rig.proposals] == [0, 300]


async def test_no_proposal_before_the_account_is_reconciled(autojump_clock: trio.testing.MockClock,
                                                            journal: Journal) -> None:
    """An intent decided on an unreconciled snapshot is held; reconciliation (a material change) sends it."""
    rig = make_rig(journal)
    rig.publish(IN_BAND)
    rig.account.set(snapshot(reconciled=False))
    with trio.fail_after(1000):
        async with running(rig):
            await trio.sleep(5)
            assert rig.proposals == []
            rig.account.set(snapshot())
            await trio.lowlevel.checkpoint()
            await trio.sleep(1)
    assert [at for at, _ in rig.proposals] == [5]



async def test_material_account_change_decides_at_once(autojump_clock: trio.testing.MockClock,
                                                      journal: Journal) -> None:
    """A new balance decides immediately; a snapshot differing only in its timestamp does not."""
    rig = make_rig(journal)
    rig.publish(OUTSIDE)
    rig.account.set(snapshot())
    with trio.fail_after(1000):
        async with running(rig):
            await trio.sleep(10)
            rig.account.set(snapshot(as_of_ms=NOW_MS + 10_000))
            await trio.sleep(10)
            rig.account.set(snapshot(quote=9000))
            times = await decisions_until(rig, 25)
    assert times == [20_000]
    assert rig.status.get_nowait()[1].decided_at_ms == NOW_MS + 20_000


async def test_block_reasons_are_logged_once_per_change(autojump_clock: trio.testing.MockClock, journal: Journal,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Four decisions with the same blocks log them once; a new set of blocks is logged again."""
    caplog.set_level(logging.INFO, logger="engine.strategy")
    rig = make_rig(journal)
    rig.publish(OUTSIDE)
    rig.account.set(snapshot())
    with trio.fail_after(1000):
        async with running(rig):
            await trio.sleep(185)  # decisions at 0, 60, 120, 180; the price goes stale after 15 s
    blocked = [r.getMessage() for r in caplog.records if r.getMessage().startswith("entries blocked")]
    assert len(blocked) == 2
    assert "PRICE_STALE" not in blocked[0]
    assert "PRICE_STALE" in blocked[1]
