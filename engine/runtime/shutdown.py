"""Turn SIGINT/SIGTERM into an orderly shutdown of the engine's main task (process-level I/O).

``run_until_signal(main, grace_s=...)`` runs ``main()`` until it returns or a signal arrives. The first
signal cancels ``main`` with the reason ``"received SIGTERM"`` (or SIGINT): a supervisor under ``main``
cancels its actors, whose shielded cleanup (``cleanup_scope``) gets ``grace_s`` to finish. Later signals
are logged and otherwise ignored, because a shutdown already in progress is the orderly path; if the
shutdown takes longer than ``grace_s`` that is logged once and reported in the summary (a shielded scope
cannot be cancelled from outside, which is why actors bound their own cleanup with the same grace).

A background child of a non-interactive shell starts with SIGINT ignored, so Ctrl-C or ``kill -INT``
would do nothing; ``restore_default_sigint()`` (called here, and to be called by ``__main__`` before
``trio.run`` so trio's own KeyboardInterrupt handling is enabled as well) puts Python's default back.

Errors raised by ``main`` propagate unchanged (unwrapped from trio's ExceptionGroup); mapping them to exit
codes is the caller's job.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

import attrs
import trio

from engine.errors import FatalError

__all__ = ["DEFAULT_SIGNALS", "ShutdownSummary", "restore_default_sigint", "run_until_signal"]

T = TypeVar("T")

logger = logging.getLogger("engine.shutdown")

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


@attrs.frozen(kw_only=True)
class ShutdownSummary(Generic[T]):
    """How the run ended. Times are trio clock seconds."""

    signal: str | None  # the signal that started the shutdown, None if main returned by itself
    result: T | None  # main's return value; None when a signal cancelled it
    requested_at: float | None  # when the signal arrived
    finished_at: float
    grace_s: float

    @property
    def shutdown_s(self) -> float | None:
        """Seconds from the signal to the end of main (None without a signal)."""
        return None if self.requested_at is None else self.finished_at - self.requested_at

    @property
    def within_grace(self) -> bool:
        duration = self.shutdown_s
        return duration is None or duration <= self.grace_s

    def describe(self) -> str:
        if self.signal is None:
            return "engine stopped: main task finished"
        verdict = "within" if self.within_grace else "OVER"
        return (
            f"engine stopped: received {self.signal}; shutdown took {self.shutdown_s:.3f}s "
            f"({verdict} the {self.grace_s:g}s grace)"
        )


def restore_default_sigint() -> bool:
    """Restore Python's default SIGINT handler if SIGINT is ignored; True if it changed anything.

    Must run in the main thread.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return True
    return False


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            stack[:0] = exc.exceptions
        else:
            leaves.append(exc)
    for leaf in leaves:
        if isinstance(leaf, FatalError):
            return leaf
    others = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
    return others[0] if len(others) == 1 else group


async def run_until_signal(
    main: Callable[[], Awaitable[T]],
    *,
    grace_s: float,
    signals: tuple[signal.Signals, ...] = DEFAULT_SIGNALS,
) -> ShutdownSummary[T]:
    """Run ``main()`` until it returns or one of ``signals`` arrives (see the module docstring)."""
    if grace_s <= 0:
        raise ValueError(f"grace_s must be > 0; got {grace_s}")
    restore_default_sigint()
    received: list[str] = []
    requested_at: float | None = None
    result: list[T] = []
    main_done = trio.Event()
    main_scope = trio.CancelScope()

    async def run_main(nursery: trio.Nursery) -> None:
        try:
            with main_scope:
                result.append(await main())
        finally:
            main_done.set()
            # Only the signal watcher is left in the nursery: stop it.
            nursery.cancel_scope.cancel(reason="main finished")

    async def watch(rx: AsyncIterator[int]) -> None:
        nonlocal requested_at
        async for signum in rx:
            name = signal.Signals(signum).name
            if received:
                logger.warning("received %s during shutdown; still waiting for cleanup", name)
                continue
            received.append(name)
            requested_at = trio.current_time()
            logger.info("received %s; shutting down (grace %gs)", name, grace_s)
            main_scope.cancel(reason=f"received {name}")
            with trio.move_on_after(grace_s):
                await main_done.wait()
            if not main_done.is_set():
                logger.error("shutdown is taking longer than the %gs grace period", grace_s)

    error: BaseException
    try:
        with trio.open_signal_receiver(*signals) as rx:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, rx)
                nursery.start_soon(run_main, nursery)
    except BaseExceptionGroup as group:
        error = _unwrap(group)
    else:
        return ShutdownSummary(
            signal=received[0] if received else None,
            result=result[0] if result else None,
            requested_at=requested_at,
            finished_at=trio.current_time(),
            grace_s=grace_s,
        )
    raise error
