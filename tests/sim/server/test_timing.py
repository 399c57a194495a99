"""Market stepping and fault schedules on trio's virtual clock (no sockets): exact virtual-time numbers."""

from __future__ import annotations

import trio
import trio.testing

from engine.sim.clock import SimClock, iso_to_us
from engine.sim.faults import Faults
from engine.sim.server import SimApp, build_core
from tests.sim.server.conftest import sim_config

WALL0_US = 1_800_000_000_000_000


def _app(speed: float, **overrides: object) -> SimApp:
    cfg = sim_config(speed=speed, step_interval_s=0.1, **overrides)
    clock = SimClock(start_historical_us=iso_to_us(cfg.start), speed=cfg.speed, keep_historical_time=False,
                     wall_us=lambda: WALL0_US + int(trio.current_time() * 1_000_000), elapsed_s=trio.current_time)
    return SimApp(cfg, build_core(cfg, clock.time_shift_us), clock, Faults(cfg.faults, seed=cfg.seed))


async def test_market_runs_at_speed_on_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    """At speed 60 with a 0.1 s cadence, 10 virtual seconds step 100 times and move the market 600 s."""
    app = _app(60.0)
    origin = app.clock.market_origin_us
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        nursery.start_soon(app.run_market)
        await trio.sleep(10.05)
        assert trio.current_time() - start == 10.05
        stats = app.statistics()
        nursery.cancel_scope.cancel(reason="test")
    assert stats.steps == 100
    assert abs(stats.market_now_us - origin - 600_000_000) <= 6_000_000
    assert app.clock.host_now_ms() == (WALL0_US + int(trio.current_time() * 1_000_000)) // 1000


async def test_unbounded_speed_advances_by_fixed_market_steps(autojump_clock: trio.testing.MockClock) -> None:
    """At speed inf the market moves max_step_market_s per step regardless of virtual time."""
    app = _app(float("inf"), max_step_market_s=2.0)
    origin = app.clock.market_origin_us
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app.run_market)
        while app.statistics().steps < 50:
            await trio.lowlevel.checkpoint()
        stats = app.statistics()
        nursery.cancel_scope.cancel(reason="test")
    assert stats.market_now_us - origin == stats.steps * 2_000_000


async def test_drop_schedule_fires_every_period(autojump_clock: trio.testing.MockClock) -> None:
    """drop_every(5) drops at t=5 and t=10; setting 0 stops the schedule."""
    app = _app(1.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app.run_fault_timers)
        await trio.sleep(1)
        app.faults.drop_every(5.0)
        await trio.sleep(10.5)
        assert app.faults.drop_generation == 2
        app.faults.drop_every(0.0)
        await trio.sleep(60)
        assert app.faults.drop_generation == 2
        nursery.cancel_scope.cancel(reason="test")


async def test_refusal_window_uses_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    """refuse_connections(3) refuses until exactly 3 virtual seconds have passed."""
    faults = Faults(sim_config().faults, seed=1)
    faults.refuse_connections(3.0)
    assert faults.refusing()
    await trio.sleep(2.999)
    assert faults.refusing()
    await trio.sleep(0.001)
    assert not faults.refusing()
    assert faults.statistics().connections_refused == 2
