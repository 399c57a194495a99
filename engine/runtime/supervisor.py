"""The supervisor: owns the engine's one long-lived nursery and applies restart policy to every actor.

Rules this module keeps (DESIGN.md section 2, STYLE.md items 4, 5, 7-9, 11, 14):

* Only the supervisor opens the long-lived nursery. Each actor is started with ``await nursery.start(...)``
  after every actor it ``depends_on`` has signalled readiness; independent actors start concurrently, so
  an actor that cannot get ready (a crash loop) delays only its dependents.
* One-for-one restart, only for errors the actor's ``RestartPolicy`` calls restartable (by default
  ``TransientError``): the first retry is immediate, later ones wait ``Backoff.delay`` on trio's clock
  (so ``MockClock`` drives it). Each failure is logged once, with its traceback, where it is decided.
* More than ``max_restarts`` restarts of one actor within ``within_s`` seconds stops the whole engine with
  ``RestartIntensityExceeded`` naming the actor and chaining its last error.
* Any other error (``FatalError``, or a plain bug) cancels the whole tree (trio's one-for-all) and is
  re-raised to the caller unwrapped from trio's ``ExceptionGroup``. An actor returning normally is an
  ``InvariantViolation``: actors run until cancelled.
* Shutdown contract: ``Supervisor.shutdown(reason)`` cancels every actor at once. Each actor's own
  ``finally:`` block does its awaiting cleanup (cancel resting orders, flush the journal, close sockets)
  under ``cleanup_scope(grace_s)`` (``trio.move_on_after(grace_s, shield=True)``), so cleanup is neither
  interrupted by the cancellation nor allowed to hang: ``run()`` returns at most ``grace_s`` after
  ``shutdown()``, with the final statistics. All actors are cancelled together (not in reverse
  dependency order) so that the total shutdown time is one grace period, not one per layer.

Restart-safe wiring: an actor that closes its channel ends with ``async with`` would hand a closed end to
its next attempt. Keep the original ends in the wiring and give every attempt a ``clone()``, e.g.
``run=lambda *, task_status: run_feed(cfg, out.clone(), task_status=task_status)``.

Actor lifecycle (``ActorState``) follows the ``TRANSITIONS`` table; any other change is an
``InvariantViolation``.
"""

from __future__ import annotations

import enum
import logging
import random
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from typing import Protocol

import attrs
import trio

from engine.confspec import non_empty
from engine.errors import FatalError, InvariantViolation, RestartIntensityExceeded
from engine.runtime.policy import RestartPolicy

__all__ = [
    "TRANSITIONS",
    "ActorEvent",
    "ActorRun",
    "ActorSpec",
    "ActorState",
    "ActorStats",
    "Supervisor",
    "SupervisorStatistics",
    "cleanup_scope",
    "run_supervised",
]

logger = logging.getLogger("engine.supervisor")


class ActorRun(Protocol):
    """An actor entry point with everything but readiness bound (``functools.partial`` of ``run_<name>``)."""

    def __call__(self, *, task_status: trio.TaskStatus[None]) -> Awaitable[object]: ...


class ActorState(enum.Enum):
    PENDING = "pending"  # waiting for the actors it depends on to become ready
    STARTING = "starting"  # running, readiness not yet signalled
    RUNNING = "running"
    BACKOFF = "backoff"  # failed with a restartable error, waiting for its restart time
    STOPPED = "stopped"  # cancelled (shutdown, or another actor's fatal error)
    FAILED = "failed"  # non-restartable error or restart intensity exceeded


class ActorEvent(enum.Enum):
    DEPS_READY = "deps_ready"
    READY = "ready"
    CRASHED = "crashed"  # a restartable failure
    GAVE_UP = "gave_up"  # a fatal failure or the intensity cap
    RETRY = "retry"
    CANCELLED = "cancelled"


S, E = ActorState, ActorEvent
TRANSITIONS: dict[tuple[ActorState, ActorEvent], ActorState] = {
    (S.PENDING, E.DEPS_READY): S.STARTING,
    (S.PENDING, E.CANCELLED): S.STOPPED,
    (S.STARTING, E.READY): S.RUNNING,
    # A failure before readiness is restarted like any other: a feed that cannot connect yet retries.
    (S.STARTING, E.CRASHED): S.BACKOFF,
    (S.STARTING, E.GAVE_UP): S.FAILED,
    (S.STARTING, E.CANCELLED): S.STOPPED,
    (S.RUNNING, E.CRASHED): S.BACKOFF,
    (S.RUNNING, E.GAVE_UP): S.FAILED,
    (S.RUNNING, E.CANCELLED): S.STOPPED,
    (S.BACKOFF, E.RETRY): S.STARTING,
    (S.BACKOFF, E.CANCELLED): S.STOPPED,
    # A restartable error raised by cleanup during shutdown is recorded, not restarted.
    (S.STOPPED, E.CRASHED): S.STOPPED,
}
del S, E


def cleanup_scope(grace_s: float) -> trio.CancelScope:
    """The scope an actor's ``finally:`` cleanup runs under: shielded from shutdown, cut at ``grace_s``."""
    return trio.move_on_after(grace_s, shield=True)


@attrs.frozen(kw_only=True)
class ActorSpec:
    """One supervised actor: its name, entry point, restart policy and start-order dependencies."""

    name: str = attrs.field(validator=non_empty)
    run: ActorRun
    policy: RestartPolicy = attrs.field(factory=RestartPolicy)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen(kw_only=True)
class ActorStats:
    """A snapshot of one actor. Times are trio clock seconds."""

    name: str
    state: ActorState
    restarts: int
    last_error: str | None
    started_at: float | None  # when the current (or last) attempt signalled readiness


@attrs.frozen(kw_only=True)
class SupervisorStatistics:
    actors: tuple[ActorStats, ...]
    shutdown_reason: str | None

    def actor(self, name: str) -> ActorStats:
        for stats in self.actors:
            if stats.name == name:
                return stats
        raise KeyError(name)


@attrs.define(eq=False)
class _Slot:
    """Mutable per-actor bookkeeping, touched only by the supervisor's tasks."""

    spec: ActorSpec
    state: ActorState = ActorState.PENDING
    restarts: int = 0
    attempt: int = 0  # backoff attempt for the next restart; reset after a healthy run
    last_error: str | None = None
    started_at: float | None = None
    restart_times: deque[float] = attrs.field(factory=deque)
    ready: trio.Event = attrs.field(factory=trio.Event)  # set once, at the first readiness
    outer_status: trio.TaskStatus[None] | None = None  # nursery.start's status, until first used


class _Readiness(trio.TaskStatus[None]):
    """The ``task_status`` one attempt receives: records readiness and completes ``nursery.start`` once."""

    def __init__(self, supervisor: Supervisor, slot: _Slot) -> None:
        self._supervisor = supervisor
        self._slot = slot
        self._used = False

    def started(self, value: None = None) -> None:
        if self._used:
            raise RuntimeError("called 'started' twice on the same task status")
        self._used = True
        slot = self._slot
        self._supervisor._transition(slot, ActorEvent.READY)
        slot.started_at = trio.current_time()
        outer, slot.outer_status = slot.outer_status, None
        slot.ready.set()
        if outer is not None:
            outer.started()


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _describe(exc: BaseException) -> str:
    leaves = _leaves(exc)
    shown = leaves[0] if len(leaves) == 1 else exc
    return f"{type(shown).__name__}: {shown}"


def _start_order(specs: Sequence[ActorSpec]) -> list[ActorSpec]:
    """Specs in dependency order (stable); unknown, duplicate or cyclic dependencies are wiring bugs."""
    by_name: dict[str, ActorSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise InvariantViolation(f"two actors are named {spec.name!r}")
        by_name[spec.name] = spec
    for spec in specs:
        for dep in spec.depends_on:
            if dep not in by_name:
                raise InvariantViolation(f"actor {spec.name!r} depends on unknown actor {dep!r}")
    ordered: list[ActorSpec] = []
    placed: set[str] = set()
    remaining = list(specs)
    while remaining:
        ready = [s for s in remaining if all(d in placed for d in s.depends_on)]
        if not ready:
            names = ", ".join(sorted(s.name for s in remaining))
            raise InvariantViolation(f"actor dependencies form a cycle among: {names}")
        ordered.extend(ready)
        placed.update(s.name for s in ready)
        remaining = [s for s in remaining if s.name not in placed]
    return ordered


def _pick_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error the caller should see: the first fatal one, else the first that is not a cancellation."""
    leaves = _leaves(group)
    for leaf in leaves:
        if isinstance(leaf, FatalError):
            return leaf
    for leaf in leaves:
        if not isinstance(leaf, trio.Cancelled):
            return leaf
    return group


class Supervisor:
    """Runs a fixed set of actors under their restart policies (see the module docstring).

    Single use: ``run()`` once. ``rng`` draws the backoff jitter; pass a seeded ``random.Random`` for a
    reproducible restart schedule.
    """

    def __init__(self, specs: Iterable[ActorSpec], *, rng: random.Random | None = None) -> None:
        self._order = [_Slot(spec=spec) for spec in _start_order(list(specs))]
        self._slots = {slot.spec.name: slot for slot in self._order}
        self._rng = rng if rng is not None else random.Random()
        self._scope: trio.CancelScope | None = None
        self._shutdown_reason: str | None = None
        self._ran = False

    def statistics(self) -> SupervisorStatistics:
        return SupervisorStatistics(
            actors=tuple(
                ActorStats(
                    name=slot.spec.name,
                    state=slot.state,
                    restarts=slot.restarts,
                    last_error=slot.last_error,
                    started_at=slot.started_at,
                )
                for slot in self._order
            ),
            shutdown_reason=self._shutdown_reason,
        )

    def shutdown(self, reason: str) -> None:
        """Cancel every actor (their shielded cleanup still runs); ``run()`` then returns. Idempotent."""
        if self._shutdown_reason is None:
            self._shutdown_reason = reason
            logger.info("shutting down: %s", reason)
        if self._scope is not None:
            self._scope.cancel(reason=reason)

    async def run(
        self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> SupervisorStatistics:
        """Start every actor, signal ``task_status.started(self)`` once all are ready, supervise them.

        Returns the final statistics after ``shutdown()``. Raises the fatal error (unwrapped) that stopped
        the engine: ``RestartIntensityExceeded``, any ``FatalError``, or an actor's unclassified bug.
        """
        if self._ran:
            raise InvariantViolation("a Supervisor runs once; build a new one to run again")
        self._ran = True
        error: BaseException
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                if self._shutdown_reason is not None:
                    nursery.cancel_scope.cancel(reason=self._shutdown_reason)
                for slot in self._order:
                    nursery.start_soon(self._start_when_ready, nursery, slot, name=slot.spec.name)
                for slot in self._order:
                    await slot.ready.wait()
                task_status.started(self)
        except BaseExceptionGroup as group:
            error = _pick_error(group)
        else:
            return self.statistics()
        raise error

    def _transition(self, slot: _Slot, event: ActorEvent) -> None:
        new = TRANSITIONS.get((slot.state, event))
        if new is None:
            raise InvariantViolation(f"actor {slot.spec.name!r}: no transition from {slot.state} on {event}")
        slot.state = new

    async def _start_when_ready(self, nursery: trio.Nursery, slot: _Slot) -> None:
        try:
            for dep in slot.spec.depends_on:
                await self._slots[dep].ready.wait()
        except trio.Cancelled:
            self._transition(slot, ActorEvent.CANCELLED)
            raise
        self._transition(slot, ActorEvent.DEPS_READY)
        await nursery.start(self._supervise, slot)

    async def _supervise(self, slot: _Slot, *, task_status: trio.TaskStatus[None]) -> None:
        slot.outer_status = task_status
        spec = slot.spec
        while True:
            try:
                await spec.run(task_status=_Readiness(self, slot))
                raise InvariantViolation(f"actor {spec.name!r} returned; an actor must run until cancelled")
            except trio.Cancelled:
                self._transition(slot, ActorEvent.CANCELLED)
                raise
            except Exception as exc:
                restart_at = self._on_failure(slot, exc)
            if restart_at is None:
                return
            try:
                await trio.sleep_until(restart_at)
            except trio.Cancelled:
                self._transition(slot, ActorEvent.CANCELLED)
                raise
            self._transition(slot, ActorEvent.RETRY)

    def _on_failure(self, slot: _Slot, exc: Exception) -> float | None:
        """Decide what one failure means: the restart time, None (shutting down), or raise to stop all."""
        spec, policy = slot.spec, slot.spec.policy
        now = trio.current_time()
        slot.last_error = _describe(exc)
        leaves = _leaves(exc)
        restartable = all(isinstance(leaf, Exception) and policy.is_restartable(leaf) for leaf in leaves)
        if not restartable:
            self._transition(slot, ActorEvent.GAVE_UP)
            logger.error("actor %s failed (%s); stopping the engine", spec.name, slot.last_error,
                         exc_info=exc)
            raise exc
        if self._shutdown_reason is not None:
            self._transition(slot, ActorEvent.CANCELLED if slot.state is not ActorState.STOPPED
                             else ActorEvent.CRASHED)
            logger.warning("actor %s failed during shutdown (%s)", spec.name, slot.last_error, exc_info=exc)
            return None
        while slot.restart_times and slot.restart_times[0] <= now - policy.within_s:
            slot.restart_times.popleft()
        if len(slot.restart_times) >= policy.max_restarts:
            self._transition(slot, ActorEvent.GAVE_UP)
            logger.error("actor %s failed (%s) after %d restarts within %gs; stopping the engine",
                         spec.name, slot.last_error, len(slot.restart_times), policy.within_s, exc_info=exc)
            raise RestartIntensityExceeded(
                f"actor {spec.name!r} needed more than {policy.max_restarts} restarts within "
                f"{policy.within_s:g}s; last error: {slot.last_error}"
            ) from exc
        if slot.started_at is not None and now - slot.started_at >= policy.reset_after_s:
            slot.attempt = 0
        delay = policy.backoff.delay(slot.attempt, self._rng)
        slot.attempt += 1
        slot.restarts += 1
        slot.restart_times.append(now)
        slot.started_at = None
        self._transition(slot, ActorEvent.CRASHED)
        logger.warning("actor %s failed (%s); restart %d in %.3fs", spec.name, slot.last_error,
                       slot.restarts, delay, exc_info=exc)
        return now + delay


async def run_supervised(
    specs: Iterable[ActorSpec],
    *,
    rng: random.Random | None = None,
    task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED,
) -> SupervisorStatistics:
    """Build a ``Supervisor`` and run it; ``await nursery.start(run_supervised, specs)`` gives its handle."""
    return await Supervisor(specs, rng=rng).run(task_status=task_status)
