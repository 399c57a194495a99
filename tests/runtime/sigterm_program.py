"""A tiny supervised program for the SIGTERM test: prints "ready", then runs until a signal.

Run as ``python -m tests.runtime.sigterm_program`` from the repository root. Its stdout is its CLI output,
read by ``test_shutdown.py``.
"""

from __future__ import annotations

import functools
import sys
from typing import NoReturn

import trio

from engine.runtime import (
    ActorSpec,
    Supervisor,
    cleanup_scope,
    restore_default_sigint,
    run_until_signal,
)

__all__ = ["main"]

GRACE_S = 2.0


async def journal(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
    task_status.started()
    try:
        await trio.sleep_forever()
    finally:
        with cleanup_scope(GRACE_S):
            await trio.sleep(0.05)
            print("cleanup: journal flushed", flush=True)


def main() -> int:
    restore_default_sigint()
    supervisor = Supervisor([ActorSpec(name="journal", run=journal)])

    async def engine() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            print("ready", flush=True)

    summary = trio.run(functools.partial(run_until_signal, engine, grace_s=GRACE_S))
    print(summary.describe())
    for actor in supervisor.statistics().actors:
        print(f"{actor.name}: {actor.state.value}, {actor.restarts} restarts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
