"""The journal actor: keeps the SQLite journal's write-ahead log short, off the order path.

Owns the journal's maintenance schedule, not the journal itself: the orders actor writes through the same
:class:`engine.store.journal.Journal`, whose automatic checkpoints are off so that no commit on the order path
ever pays for one. This actor runs :meth:`Journal.checkpoint` (PASSIVE: it never waits for a writer) in a
worker thread every ``checkpoint_interval_s`` on a real schedule (``trio.sleep_until``; a late checkpoint
skips the slots it missed instead of running back to back).

Shutdown: in a shielded, bounded ``finally`` it runs a ``TRUNCATE`` checkpoint, which copies everything into
the database file and empties the WAL (the flush). It closes the journal only with ``close_on_exit=True``:
other actors (orders cancelling resting orders) may still journal during the same shutdown, so by default
the code that opened the journal closes it after the supervisor has stopped every actor.
"""

from __future__ import annotations

import logging
import math
from typing import Final, NoReturn

import attrs
import trio

from engine.errors import EngineError
from engine.runtime import LatestValue, cleanup_scope
from engine.store.config import JournalConfig
from engine.store.journal import CheckpointResult, Journal

__all__ = ["DEFAULT_SHUTDOWN_GRACE_S", "CheckpointReport", "run_journal"]

log = logging.getLogger("engine.journal")

# Matches the supervisor's default cleanup bound ([supervisor] shutdown_grace_s); the wiring passes its own.
DEFAULT_SHUTDOWN_GRACE_S: Final = 5.0


@attrs.frozen(kw_only=True)
class CheckpointReport:
    """One finished checkpoint: when it started (trio clock seconds) and what SQLite reported."""

    started_at_s: float
    result: CheckpointResult
    final: bool  # the TRUNCATE checkpoint at shutdown


def _next_slot(next_at: float, interval_s: float, now: float) -> float:
    """The first slot of the schedule ``next_at + k * interval_s`` that is still in the future."""
    next_at += interval_s
    if next_at <= now:
        next_at += math.floor((now - next_at) / interval_s + 1) * interval_s
    return next_at


async def run_journal(
    cfg: JournalConfig,
    *,
    journal: Journal,
    reports: LatestValue[CheckpointReport] | None = None,
    close_on_exit: bool = False,
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Checkpoint ``journal`` every ``cfg.checkpoint_interval_s`` until cancelled, then flush it.

    ``reports`` (optional) receives every finished checkpoint, for metrics and tests. A failing checkpoint
    raises the journal's FatalError (a broken journal stops the engine).
    """
    try:
        task_status.started()
        next_at = trio.current_time() + cfg.checkpoint_interval_s
        while True:
            await trio.sleep_until(next_at)
            started = trio.current_time()
            result = await trio.to_thread.run_sync(journal.checkpoint)
            if result.busy:
                # PASSIVE never waits: a writer held the lock, the next slot catches up.
                log.debug("journal checkpoint incomplete (a writer was busy): %d of %d frames",
                          result.checkpointed_frames, result.wal_frames)
            if reports is not None:
                reports.set(CheckpointReport(started_at_s=started, result=result, final=False))
            next_at = _next_slot(next_at, cfg.checkpoint_interval_s, trio.current_time())
    finally:
        with cleanup_scope(shutdown_grace_s):
            await _flush(journal, reports, close=close_on_exit)


async def _flush(journal: Journal, reports: LatestValue[CheckpointReport] | None, *, close: bool) -> None:
    started = trio.current_time()
    try:
        # abandon_on_cancel: when the grace period runs out, shutdown goes on without waiting for SQLite.
        result = await trio.to_thread.run_sync(journal.checkpoint, "TRUNCATE", abandon_on_cancel=True)
    except EngineError:
        # Shutdown continues regardless; the commits themselves are already durable in the WAL.
        log.warning("journal: final checkpoint failed; the WAL is replayed on the next open", exc_info=True)
    else:
        if reports is not None:
            reports.set(CheckpointReport(started_at_s=started, result=result, final=True))
    if close:
        await trio.to_thread.run_sync(journal.close, abandon_on_cancel=True)
