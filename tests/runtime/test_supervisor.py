"""Supervisor behaviour on trio's MockClock: restart schedule, intensity cap, fatal errors, shutdown."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import NoReturn

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

from engine.errors import (
    AuthError,
    ExchangeUnavailable,
    FeedDisconnected,
    InvariantViolation,
    RestartIntensityExceeded,
)
from engine.runtime.backoff import Backoff
from engine.runtime.policy import RestartPolicy
from engine.runtime.supervisor import (
    ActorSpec,
    ActorState,
    Supervisor,
    SupervisorStatistics,
    cleanup_scope,
    run_supervised,
)

BACKOFF = Backoff(initial_s=1.0, max_s=8.0, factor=2.0)
POLICY = RestartPolicy(max_restarts=100, within_s=1000.0, backoff=BACKOFF, reset_after_s=1000.0)
SEED = 20261129

Status = trio.TaskStatus[None]


async def run_for(sup: Supervisor, seconds: float) -> SupervisorStatistics:
    """Run the supervisor, shut it down after ``seconds`` of virtual time, return its final statistics."""

    async def stop_later() -> None:
        await trio.sleep(seconds)
        sup.shutdown("test over")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_later)
        stats = await sup.run()
    return stats


async def idle(
    cleaned: list[str] | None = None,
    name: str = "",
    *,
    task_status: Status = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """A well-behaved actor: ready at once, runs until cancelled, records its cleanup."""
    task_status.started()
    try:
        await trio.sleep_forever()
    finally:
        with cleanup_scope(1.0):
            await trio.sleep(0.5)
            if cleaned is not None:
                cleaned.append(name)


def always_failing(starts: list[float], *, ready: bool = True) -> Callable[..., Awaitable[NoReturn]]:
    async def run(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        starts.append(trio.current_time())
        if ready:
            task_status.started()
        raise FeedDisconnected(f"drop {len(starts)}")

    return run


def schedule(first_delays: int, count: int, *, backoff: Backoff = BACKOFF, seed: int = SEED) -> list[float]:
    """Expected start times for an actor failing at once every time: 0, 0 (immediate), then jittered."""
    rng = random.Random(seed)
    times = [0.0, 0.0]
    for attempt in range(1, count - 1):
        times.append(times[-1] + backoff.delay(attempt, rng))
    return times[:first_delays] if first_delays else times


async def test_restart_times_follow_the_seeded_backoff(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Restarts happen at 0 (immediate), then at the seeded full-jitter delays; each failure logged once."""
    caplog.set_level(logging.WARNING, logger="engine.supervisor")
    starts: list[float] = []
    sup = Supervisor([ActorSpec(name="feed", run=always_failing(starts), policy=POLICY)],
                     rng=random.Random(SEED))
    stats = await run_for(sup, 40.0)

    expected = [t for t in schedule(0, 40) if t < 40.0]
    assert starts == pytest.approx(expected, abs=1e-9)
    assert starts[:2] == [0.0, 0.0]
    feed = stats.actor("feed")
    assert feed.restarts == len(starts) - 1
    assert feed.last_error == f"FeedDisconnected: drop {len(starts)}"
    assert feed.state is ActorState.STOPPED
    records = [r for r in caplog.records if r.name == "engine.supervisor" and r.levelno == logging.WARNING]
    assert len(records) == len(starts)
    for n, record in enumerate(records, start=1):
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], FeedDisconnected)
        assert f"drop {n}" in record.getMessage()


async def test_intensity_cap_stops_the_engine(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The fourth failure within the window of a max_restarts=3 policy stops everything, cleanly."""
    caplog.set_level(logging.ERROR, logger="engine.supervisor")
    starts: list[float] = []
    cleaned: list[str] = []
    policy = attrs.evolve(POLICY, max_restarts=3, within_s=60.0)
    sup = Supervisor(
        [
            ActorSpec(name="flaky", run=always_failing(starts), policy=policy),
            ActorSpec(name="bystander", run=partial(idle, cleaned, "bystander")),
        ],
        rng=random.Random(SEED),
    )
    with pytest.raises(RestartIntensityExceeded) as info:
        await sup.run()

    expected = schedule(4, 4)
    assert starts == pytest.approx(expected, abs=1e-9)
    # Stopped at the fourth failure, plus the bystander's 0.5 s shielded cleanup.
    assert trio.current_time() == pytest.approx(expected[-1] + 0.5, abs=1e-9)
    assert str(info.value) == "actor 'flaky' needed more than 3 restarts within 60s; last error: " \
                              "FeedDisconnected: drop 4"
    assert isinstance(info.value.__cause__, FeedDisconnected)
    assert cleaned == ["bystander"]
    stats = sup.statistics()
    assert stats.actor("flaky").state is ActorState.FAILED
    assert stats.actor("flaky").restarts == 3
    assert stats.actor("bystander").state is ActorState.STOPPED
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


async def test_failures_spread_wider_than_the_window_never_trip_the_cap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With max_restarts=1 per 60 s, an actor failing every 100 s restarts indefinitely."""
    starts: list[float] = []

    async def fails_every_100s(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        starts.append(trio.current_time())
        task_status.started()
        await trio.sleep(100.0)
        raise ExchangeUnavailable("503")

    policy = attrs.evolve(POLICY, max_restarts=1, within_s=60.0, reset_after_s=50.0)
    stats = await run_for(Supervisor([ActorSpec(name="rest", run=fails_every_100s, policy=policy)]), 950.0)
    assert starts == [100.0 * n for n in range(10)]
    assert stats.actor("rest").restarts == 9


@pytest.mark.parametrize("error", [AuthError("keys rejected"), InvariantViolation("impossible"),
                                   KeyError("bug")])
async def test_fatal_error_cancels_every_actor_and_propagates_unwrapped(
    autojump_clock: trio.testing.MockClock, error: Exception
) -> None:
    """A non-restartable error cancels all actors (their cleanup runs) and reaches the caller as itself."""
    cleaned: list[str] = []

    async def breaks(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        task_status.started()
        await trio.sleep(5.0)
        raise error

    sup = Supervisor([
        ActorSpec(name="a", run=partial(idle, cleaned, "a")),
        ActorSpec(name="bad", run=breaks, policy=POLICY),
        ActorSpec(name="b", run=partial(idle, cleaned, "b"), depends_on=("a",)),
    ])
    with pytest.raises(type(error)) as info:
        await sup.run()
    assert info.value is error
    assert trio.current_time() == 5.5
    assert sorted(cleaned) == ["a", "b"]
    stats = sup.statistics()
    assert [(s.name, s.state) for s in stats.actors] == [
        ("a", ActorState.STOPPED), ("bad", ActorState.FAILED), ("b", ActorState.STOPPED)]


async def test_fatal_error_before_readiness_reaches_nursery_start(autojump_clock: trio.testing.MockClock) -> None:
    """An actor that fails fatally while starting makes ``nursery.start(run_supervised)`` raise that error."""

    async def bad_config(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        await trio.sleep(1.0)
        raise AuthError("bad key")

    async with trio.open_nursery() as nursery:
        with pytest.raises(AuthError, match="bad key"):
            await nursery.start(run_supervised, [ActorSpec(name="auth", run=bad_config)])


async def test_actor_returning_normally_is_an_invariant_violation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Actors never return; one that does stops the engine with InvariantViolation."""

    async def returns(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep(2.0)

    with pytest.raises(InvariantViolation, match="actor 'quitter' returned"):
        await Supervisor([ActorSpec(name="quitter", run=returns, policy=POLICY)]).run()
    assert trio.current_time() == 2.0


async def test_shutdown_runs_cleanup_within_grace_and_cuts_a_hanging_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """shutdown() cancels all actors; shielded cleanup completes, and a hanging one is cut at the grace."""
    flushed_at: list[float] = []
    cut: list[tuple[float, bool]] = []

    async def journal(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with cleanup_scope(2.0):
                await trio.sleep(1.5)
                flushed_at.append(trio.current_time())

    async def orders(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with cleanup_scope(2.0) as scope:
                await trio.sleep_forever()
            cut.append((trio.current_time(), scope.cancelled_caught))

    stats = await run_for(Supervisor([ActorSpec(name="journal", run=journal),
                                      ActorSpec(name="orders", run=orders)]), 10.0)
    assert flushed_at == [11.5]
    assert cut == [(12.0, True)]
    assert trio.current_time() == 12.0
    assert stats.shutdown_reason == "test over"
    assert {s.state for s in stats.actors} == {ActorState.STOPPED}


async def test_crash_loop_does_not_starve_the_others(autojump_clock: trio.testing.MockClock) -> None:
    """A never-ready actor crashing in a loop neither delays nor slows an independent actor."""
    looper_starts: list[float] = []
    ticks: list[float] = []

    async def worker(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        task_status.started()
        tick = 0.0
        while True:
            tick += 0.5
            await trio.sleep_until(tick)
            ticks.append(trio.current_time())

    fast = RestartPolicy(max_restarts=10**6, within_s=1.0, backoff=Backoff(initial_s=0.01, max_s=0.05))
    sup = Supervisor([ActorSpec(name="looper", run=always_failing(looper_starts, ready=False), policy=fast),
                      ActorSpec(name="worker", run=worker)], rng=random.Random(SEED))
    stats = await run_for(sup, 10.25)
    assert ticks == [0.5 * n for n in range(1, 21)]
    assert stats.actor("worker").started_at == 0.0
    assert stats.actor("worker").state is ActorState.STOPPED
    assert stats.actor("looper").restarts == len(looper_starts) - 1 > 200
    assert stats.actor("looper").started_at is None


async def test_backoff_resets_after_a_healthy_period(autojump_clock: trio.testing.MockClock) -> None:
    """After reset_after_s of healthy running, the next failure restarts immediately again."""
    starts: list[float] = []

    async def actor(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        starts.append(trio.current_time())
        task_status.started()
        attempt = len(starts) - 1
        if attempt == 2:
            await trio.sleep(50.0)  # healthy for longer than reset_after_s
        if attempt == 4:
            await trio.sleep_forever()
        raise FeedDisconnected(f"attempt {attempt}")

    policy = attrs.evolve(POLICY, reset_after_s=30.0)
    await run_for(Supervisor([ActorSpec(name="feed", run=actor, policy=policy)], rng=random.Random(SEED)),
                  200.0)
    rng = random.Random(SEED)
    d1 = BACKOFF.delay(1, rng)
    d1_again = BACKOFF.delay(1, rng)
    assert starts == pytest.approx([0.0, 0.0, d1, d1 + 50.0, d1 + 50.0 + d1_again], abs=1e-9)


async def test_actors_start_in_dependency_order(autojump_clock: trio.testing.MockClock) -> None:
    """A dependent starts when its dependency is ready; independent actors start at once."""
    started: dict[str, float] = {}

    async def actor(name: str, ready_after: float, *, task_status: Status = trio.TASK_STATUS_IGNORED
                    ) -> NoReturn:
        started[name] = trio.current_time()
        await trio.sleep(ready_after)
        task_status.started()
        await trio.sleep_forever()

    specs = [
        ActorSpec(name="strategy", run=partial(actor, "strategy", 1.0), depends_on=("cache",)),
        ActorSpec(name="cache", run=partial(actor, "cache", 2.0), depends_on=("feed",)),
        ActorSpec(name="feed", run=partial(actor, "feed", 5.0)),
        ActorSpec(name="metrics", run=partial(actor, "metrics", 0.0)),
    ]
    async with trio.open_nursery() as nursery:
        sup = await nursery.start(run_supervised, specs)
        assert trio.current_time() == 8.0
        sup.shutdown("done")
    assert started == {"feed": 0.0, "metrics": 0.0, "cache": 5.0, "strategy": 7.0}
    assert [s.name for s in sup.statistics().actors] == ["feed", "metrics", "cache", "strategy"]


async def test_readiness_survives_restarts_before_the_first_start(autojump_clock: trio.testing.MockClock) -> None:
    """An actor failing before it is ready is restarted; nursery.start returns when an attempt is ready."""
    starts: list[float] = []

    async def connects_third_time(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        starts.append(trio.current_time())
        if len(starts) < 3:
            raise FeedDisconnected("refused")
        task_status.started()
        await trio.sleep_forever()

    spec = ActorSpec(name="feed", run=connects_third_time, policy=POLICY)
    async with trio.open_nursery() as nursery:
        sup = await nursery.start(partial(run_supervised, [spec], rng=random.Random(SEED)))
        ready_at = trio.current_time()
        sup.shutdown("done")
    expected = schedule(3, 3)
    assert starts == pytest.approx(expected, abs=1e-9)
    assert ready_at == pytest.approx(expected[-1], abs=1e-9)
    assert sup.statistics().actor("feed").restarts == 2


async def test_restartable_exception_group_restarts_and_mixed_group_is_fatal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A group of transient errors from an actor's own nursery restarts it; a fatal member stops all."""
    attempts: list[float] = []

    async def two_streams(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        attempts.append(trio.current_time())
        task_status.started()

        async def drop() -> None:
            raise FeedDisconnected("stream closed")

        async def reject() -> None:
            # No checkpoint before raising, so drop()'s failure cannot cancel this one first.
            raise AuthError("signature rejected")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drop)
            if len(attempts) == 2:
                nursery.start_soon(reject)
        await trio.sleep_forever()

    with pytest.raises(AuthError, match="signature rejected"):
        await Supervisor([ActorSpec(name="feed", run=two_streams, policy=POLICY)]).run()
    assert attempts == [0.0, 0.0]


async def test_transient_error_in_cleanup_during_shutdown_is_recorded_not_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A restartable error raised while shutting down ends that actor quietly; run() still returns."""

    async def orders(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with cleanup_scope(1.0):
                await trio.sleep(0.25)
            raise ExchangeUnavailable("cancel_all: 503")

    stats = await run_for(Supervisor([ActorSpec(name="orders", run=orders, policy=POLICY)]), 3.0)
    orders_stats = stats.actor("orders")
    assert orders_stats.state is ActorState.STOPPED
    assert orders_stats.last_error == "ExchangeUnavailable: cancel_all: 503"
    assert orders_stats.restarts == 0
    assert trio.current_time() == 3.25


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([("a", ()), ("a", ())], "two actors are named 'a'"),
        ([("a", ("ghost",))], "actor 'a' depends on unknown actor 'ghost'"),
        ([("a", ("b",)), ("b", ("a",)), ("c", ())], "actor dependencies form a cycle among: a, b"),
    ],
)
def test_wiring_mistakes_are_rejected(specs: list[tuple[str, tuple[str, ...]]], message: str) -> None:
    """Duplicate names, unknown dependencies and cycles are rejected before anything starts."""
    with pytest.raises(InvariantViolation, match=message):
        Supervisor([ActorSpec(name=name, run=idle, depends_on=deps) for name, deps in specs])


async def test_shutdown_before_run_stops_everything_at_once(autojump_clock: trio.testing.MockClock) -> None:
    """A shutdown requested before run() makes run() return at once with every actor stopped."""
    sup = Supervisor([ActorSpec(name="a", run=idle), ActorSpec(name="b", run=idle, depends_on=["a"])])
    sup.shutdown("early")
    stats = await sup.run()
    # a has no checkpoint before readiness, so it starts and its 0.5 s cleanup runs; b never starts.
    assert trio.current_time() == 0.5
    assert stats.shutdown_reason == "early"
    assert {s.state for s in stats.actors} == {ActorState.STOPPED}


async def test_shutdown_during_startup_still_returns_the_handle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """shutdown() while an actor is not yet ready ends run(); nursery.start still gets the supervisor."""
    holder: list[Supervisor] = []

    async def slow_start(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        await trio.sleep(1.0)
        holder[0].shutdown("kill switch during startup")
        await trio.sleep(5.0)
        task_status.started()
        await trio.sleep_forever()

    sup = Supervisor([ActorSpec(name="slow", run=slow_start)])
    holder.append(sup)
    async with trio.open_nursery() as nursery:
        assert await nursery.start(sup.run) is sup
    assert trio.current_time() == 1.0
    assert sup.statistics().actor("slow").state is ActorState.STOPPED


async def test_supervisor_runs_once(autojump_clock: trio.testing.MockClock) -> None:
    """A second run() of the same supervisor is refused."""
    sup = Supervisor([ActorSpec(name="a", run=idle)])
    await run_for(sup, 1.0)
    with pytest.raises(InvariantViolation, match="runs once"):
        await sup.run()


async def test_transient_cleanup_error_during_a_fatal_stop_is_not_restarted(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """When another actor's fatal error cancels the tree, a transient error from cleanup is not retried."""
    caplog.set_level(logging.WARNING, logger="engine.supervisor")

    async def orders(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            raise ExchangeUnavailable("cancel_all: connection reset")

    async def auth(*, task_status: Status = trio.TASK_STATUS_IGNORED) -> NoReturn:
        task_status.started()
        await trio.sleep(1.0)
        raise AuthError("keys revoked")

    sup = Supervisor([ActorSpec(name="orders", run=orders, policy=POLICY), ActorSpec(name="auth", run=auth)])
    with pytest.raises(AuthError, match="keys revoked"):
        await sup.run()
    assert sup.statistics().actor("orders").state is ActorState.STOPPED
    assert sup.statistics().actor("orders").last_error == "ExchangeUnavailable: cancel_all: connection reset"
    assert not [r for r in caplog.records if "restart" in r.getMessage()]
