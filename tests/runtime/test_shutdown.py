"""Signal-driven shutdown: SIGINT restoration, run_until_signal in-process, and a real SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import trio
import trio.lowlevel
import trio.testing

from engine.errors import AuthError
from engine.runtime.shutdown import restore_default_sigint, run_until_signal
from engine.runtime.supervisor import ActorSpec, Supervisor, cleanup_scope

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def saved_sigint() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("saved_sigint")
def test_restore_default_sigint_undoes_an_inherited_ignore() -> None:
    """An ignored SIGINT (background child of a shell) gets Python's default handler back, once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    assert restore_default_sigint() is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert restore_default_sigint() is False


@pytest.mark.usefixtures("saved_sigint")
def test_restore_default_sigint_keeps_a_custom_handler() -> None:
    """A handler someone installed on purpose is left alone."""

    def handler(signum: int, frame: object) -> None:
        raise AssertionError("not called")

    signal.signal(signal.SIGINT, handler)
    assert restore_default_sigint() is False
    assert signal.getsignal(signal.SIGINT) is handler


async def test_main_returning_gives_a_summary_without_signal(autojump_clock: trio.testing.MockClock) -> None:
    """When main returns on its own, its result is in the summary and no signal is recorded."""

    async def main() -> int:
        await trio.sleep(3.0)
        return 42

    summary = await run_until_signal(main, grace_s=1.0)
    assert (summary.signal, summary.result, summary.shutdown_s, summary.finished_at) == (None, 42, None, 3.0)
    assert summary.describe() == "engine stopped: main task finished"


async def test_errors_from_main_propagate_unwrapped(autojump_clock: trio.testing.MockClock) -> None:
    """A fatal error from main reaches the caller as itself, not inside an ExceptionGroup."""

    async def main() -> None:
        await trio.sleep(1.0)
        raise AuthError("keys rejected")

    with pytest.raises(AuthError, match="keys rejected"):
        await run_until_signal(main, grace_s=1.0)


async def test_sigterm_cancels_main_and_cleanup_runs(autojump_clock: trio.testing.MockClock) -> None:
    """SIGTERM cancels the supervised engine; actor cleanup completes inside the grace period."""
    cleaned_at: list[float] = []

    async def journal(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with cleanup_scope(2.0):
                await trio.sleep(1.5)
                cleaned_at.append(trio.current_time())

    supervisor = Supervisor([ActorSpec(name="journal", run=journal)])

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            await trio.sleep(10.0)
            os.kill(os.getpid(), signal.SIGTERM)
            await trio.sleep_forever()

    with trio.fail_after(60.0):
        summary = await run_until_signal(main, grace_s=2.0)
    assert summary.signal == "SIGTERM"
    assert summary.result is None
    assert summary.requested_at == 10.0
    assert summary.shutdown_s == 1.5
    assert summary.within_grace
    assert cleaned_at == [11.5]
    assert summary.describe() == "engine stopped: received SIGTERM; shutdown took 1.500s (within the 2s grace)"


async def test_overrunning_shutdown_is_reported(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A cleanup that ignores the grace period is logged once and flagged in the summary."""
    caplog.set_level(logging.ERROR, logger="engine.shutdown")

    async def main() -> None:
        try:
            await trio.sleep(1.0)
            os.kill(os.getpid(), signal.SIGTERM)
            await trio.sleep_forever()
        finally:
            # A badly behaved cleanup: shielded without a deadline of its own.
            with trio.CancelScope(shield=True):
                await trio.sleep(5.0)

    with trio.fail_after(60.0):
        summary = await run_until_signal(main, grace_s=2.0)
    assert summary.shutdown_s == 5.0
    assert not summary.within_grace
    assert "OVER the 2s grace" in summary.describe()
    assert [r.getMessage() for r in caplog.records] == ["shutdown is taking longer than the 2s grace period"]


def test_invalid_grace_is_rejected() -> None:
    """grace_s must be positive."""

    async def main() -> None:
        await trio.lowlevel.checkpoint()

    with pytest.raises(ValueError, match="grace_s must be > 0; got 0"):
        trio.run(lambda: run_until_signal(main, grace_s=0))


async def test_sigterm_to_a_real_process_exits_zero_with_summary() -> None:
    """A real subprocess running a supervised program exits 0 on SIGTERM after its cleanup ran."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    output = b""
    with trio.fail_after(5.0):
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tests.runtime.sigterm_program"],
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            env=env,
        )
        try:
            assert proc.stdout is not None
            while b"ready\n" not in output:
                chunk = await proc.stdout.receive_some()
                assert chunk, f"program exited before it was ready: {output!r}"
                output += chunk
            proc.send_signal(signal.SIGTERM)
            while chunk := await proc.stdout.receive_some():
                output += chunk
            returncode = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()
    lines = output.decode().splitlines()
    assert returncode == 0
    assert lines[0] == "ready"
    assert lines[1] == "cleanup: journal flushed"
    assert lines[2].startswith("engine stopped: received SIGTERM; shutdown took ")
    assert lines[2].endswith("(within the 2s grace)")
    assert lines[3] == "journal: stopped, 0 restarts"
