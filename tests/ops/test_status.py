"""The status actor and its pure formatting: stale prices never show a number; lines come on schedule."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from actors.status import (
    StatusSnapshot,
    build_status_table,
    format_notice,
    format_quote,
    format_status_line,
    run_status,
)
from engine.config import StatusConfig
from engine.events import AccountSnapshot, RiskState, StrategyStatus
from engine.market.view import MarketView
from engine.notices import Notice, NoticeFanout, Severity
from engine.runtime import ActorState, ActorStats, LatestValue, SupervisorStatistics
from tests.ops import factories as f


def _snap(**overrides: object) -> StatusSnapshot:
    fields: dict[str, object] = {
        "symbol": f.SYMBOL, "now_s": 2.0, "view": f.view(f.price("97123.5"), as_of_s=1.5),
        "account": f.account(), "risk": f.risk(), "strategy": f.strategy(), "restarts": 3,
    }
    fields.update(overrides)
    return StatusSnapshot(**fields)  # type: ignore[arg-type]


def test_status_line_has_every_field() -> None:
    """A healthy line names the market, price with source and age, level band, position, equity, risk, restarts."""
    line = format_status_line(_snap())
    assert line == (
        "BTC_USDC_PERP price 97123.5 (ws, 0.9s) | next L2 95000 [94500, 95500] | pos 0.01 @ 96000.5"
        " | equity 10012.3 | risk ok | restarts 3"
    )


def test_stale_price_shows_stale_and_reason_never_a_number() -> None:
    """A stale quote reads STALE with its reason and last-seen age, and no price digits appear."""
    line = format_status_line(_snap(view=f.view(f.stale("no ws data for 12.0s", 12.0), as_of_s=1.0)))
    price_part = line.split(" | ")[0]
    assert price_part == "BTC_USDC_PERP price STALE (no ws data for 12.0s; last seen 13.0s ago)"
    assert "97123" not in line


@settings(max_examples=50, deadline=None)
@given(reason=st.text(alphabet="abcdefgh ", min_size=1, max_size=20),
       age=st.none() | st.floats(min_value=0, max_value=1e6))
def test_format_quote_stale_never_contains_a_price(reason: str, age: float | None) -> None:
    """Whatever the reason and age, a stale quote formats as STALE and carries no value."""
    text = format_quote(f.stale(reason, age))
    assert text.startswith("STALE (")
    assert ("never seen" in text) == (age is None)


def test_cached_and_rest_sources_are_named() -> None:
    """The source shown is where the price came from, including 'cached' WebSocket values and REST."""
    assert format_quote(f.price("1.5", source="rest", age_s=2.0)) == "1.5 (rest, 2.0s)"
    assert format_quote(f.price("1.5", cached=True, age_s=3.0), elapsed_s=1.0) == "1.5 (ws cached, 4.0s)"


def test_missing_inputs_read_na_not_zero() -> None:
    """Before anything is published every field says n/a instead of inventing a value."""
    line = format_status_line(_snap(view=None, account=None, risk=None, strategy=None, restarts=None))
    assert line == ("BTC_USDC_PERP price n/a (no market view yet) | next n/a | pos n/a | equity n/a"
                    " | risk n/a | restarts n/a")


def test_risk_states_and_flat_position() -> None:
    """Halt and kill switch show with their reason (kill switch wins); a zero position reads flat."""
    halted = format_status_line(_snap(risk=f.risk(halted=True, reason="operator")))
    killed = format_status_line(_snap(risk=f.risk(halted=True, kill=True, reason="drawdown 0.61")))
    flat = format_status_line(_snap(account=f.account(qty="0", equity=None)))
    assert "| risk HALTED (operator) |" in halted
    assert "| risk KILL SWITCH (drawdown 0.61) |" in killed
    assert "| pos flat | equity n/a |" in flat


def test_notice_and_table_rendering() -> None:
    """Notices read 'kind: text' with non-info severity marked; the table shows STALE and the notices."""
    fill = Notice(kind="fill", text="bought 0.01 at 95000", at_ms=1)
    alert = Notice(kind="risk", text="kill switch", at_ms=2, severity=Severity.CRITICAL)
    assert format_notice(fill) == "fill: bought 0.01 at 95000"
    assert format_notice(alert) == "[critical] risk: kill switch"
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(build_status_table(_snap(view=f.view(f.stale(), as_of_s=2.0)), [fill]))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "STALE (no ws data for 12.0s; last seen 12.0s ago)" in text
    assert "fill: bought 0.01 at 95000" in text
    assert "L2 95000 [94500, 95500]" in text  # brackets printed as written, not read as markup


class _TrioTimes(logging.Handler):
    """Records the trio clock time of every status line (caplog keeps wall-clock times only)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((trio.current_time(), record.getMessage()))


@pytest.fixture
def trio_times() -> Iterator[_TrioTimes]:
    handler = _TrioTimes()
    logger = logging.getLogger("engine.status")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


class _Holders:
    def __init__(self) -> None:
        self.market: LatestValue[MarketView] = LatestValue()
        self.account: LatestValue[AccountSnapshot] = LatestValue()
        self.risk: LatestValue[RiskState] = LatestValue()
        self.strategy: LatestValue[StrategyStatus] = LatestValue()


def _stats() -> SupervisorStatistics:
    return SupervisorStatistics(shutdown_reason=None, actors=(
        ActorStats(name="feed", state=ActorState.RUNNING, restarts=2, last_error=None, started_at=0.0),
        ActorStats(name="orders", state=ActorState.RUNNING, restarts=1, last_error=None, started_at=0.0),
    ))


async def test_status_actor_logs_on_exact_schedule_and_notices_at_once(
        autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture,
        trio_times: _TrioTimes) -> None:
    """Status lines come at start + k*interval exactly; a notice is logged the moment it is published."""
    caplog.set_level(logging.INFO, logger="engine.status")
    holders = _Holders()
    fanout = NoticeFanout()
    rx = fanout.subscribe("status", size=8)
    cfg = StatusConfig(interval_s=10.0, display="plain")
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_status(
                cfg, market=holders.market, account=holders.account, risk=holders.risk,
                strategy=holders.strategy, supervisor_stats=_stats, notices=rx.clone(), symbol=f.SYMBOL,
                task_status=task_status))
            start = trio.current_time()
            await trio.sleep(5)
            holders.market.set(f.view(f.stale(), as_of_s=trio.current_time()))
            await trio.sleep(10)  # t = 15
            holders.market.set(f.view(f.price("97000"), as_of_s=trio.current_time()))
            holders.account.set(f.account())
            holders.risk.set(f.risk())
            holders.strategy.set(f.strategy())
            fanout.publish(Notice(kind="fill", text="bought 0.01 at 97000", at_ms=1))
            await trio.sleep(0.5)
            await trio.sleep(20)  # t = 35.5
            nursery.cancel_scope.cancel(reason="test done")
    times = [round(t - start, 6) for t, _ in trio_times.lines]
    assert times == [10.0, 15.0, 20.0, 30.0]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("BTC_USDC_PERP price STALE (no ws data for 12.0s; last seen 17.0s ago)")
    assert messages[0].endswith("| risk n/a | restarts 3")
    assert messages[1] == "fill: bought 0.01 at 97000"
    assert messages[2].startswith("BTC_USDC_PERP price 97000 (ws, 5.4s) | next L2 95000 [94500, 95500]")
    assert "97000 (ws, 15.4s)" in messages[3]


async def test_status_actor_live_mode_draws_the_table(autojump_clock: trio.testing.MockClock) -> None:
    """With display = live the actor redraws a rich table at refresh_s and shows recent notices."""
    holders = _Holders()
    fanout = NoticeFanout()
    rx = fanout.subscribe("status", size=8)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140, color_system=None)
    cfg = StatusConfig(display="live", refresh_s=1.0, recent_notices=2)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_status(
                cfg, market=holders.market, account=holders.account, risk=holders.risk,
                strategy=holders.strategy, supervisor_stats=None, notices=rx, symbol=f.SYMBOL,
                console=console, task_status=task_status))
            holders.market.set(f.view(f.stale("feed down", None), as_of_s=trio.current_time()))
            fanout.publish(Notice(kind="order", text="placed L2 buy 0.01 at 95000", at_ms=1, code="NEW"))
            await trio.sleep(2.5)
            nursery.cancel_scope.cancel(reason="test done")
    text = out.getvalue()
    assert "STALE (feed down; never seen)" in text
    assert "order: placed L2 buy 0.01 at 95000" in text
