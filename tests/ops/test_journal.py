"""The journal actor checkpoints a real SQLite journal on schedule and flushes it at shutdown."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import trio
import trio.testing

from actors.journal import CheckpointReport, run_journal
from engine.errors import FatalError, InvariantViolation
from engine.runtime import LatestValue
from engine.store.config import JournalConfig
from engine.store.journal import Journal


def _write(journal: Journal, n: int) -> None:
    for i in range(n):
        journal.save_strategy_state(f"key-{i}", {"value": i, "pad": "x" * 200})


def _size(path: Path) -> int:
    return path.stat().st_size


async def test_checkpoints_on_schedule_and_flushes_at_shutdown(mock_clock: trio.testing.MockClock,
                                                               tmp_path: Path) -> None:
    """Checkpoints start at exactly k * interval on trio's clock; shutdown runs a final TRUNCATE, WAL emptied."""
    cfg = JournalConfig(path=str(tmp_path / "journal.sqlite"), checkpoint_interval_s=30.0)
    journal = Journal.from_config(cfg)
    reports: LatestValue[CheckpointReport] = LatestValue()
    wal = Path(cfg.path + "-wal")
    try:
        _write(journal, 20)
        # A trio-clock guard, so it must outlast the virtual jumps below; the jumps are made by hand (no
        # autojump) because autojump would also move the clock while the checkpoint thread runs.
        with trio.fail_after(1000):
            async with trio.open_nursery() as nursery:
                start = trio.current_time()
                await nursery.start(functools.partial(run_journal, cfg, journal=journal, reports=reports))
                mock_clock.jump(29.9)
                await trio.testing.wait_all_tasks_blocked()
                assert reports.version == 0
                mock_clock.jump(0.1)
                seen, first = await reports.wait_changed(0)
                assert first.started_at_s - start == pytest.approx(30.0)
                assert (first.final, first.result.mode, first.result.busy) == (False, "PASSIVE", False)
                assert first.result.wal_frames > 0
                assert first.result.checkpointed_frames == first.result.wal_frames
                _write(journal, 5)
                mock_clock.jump(30.0)
                seen, second = await reports.wait_changed(seen)
                assert second.started_at_s - start == pytest.approx(60.0)
                assert _size(wal) > 0
                nursery.cancel_scope.cancel(reason="test done")
        _, final = reports.get_nowait()
        assert (final.final, final.result.mode) == (True, "TRUNCATE")
        assert _size(wal) == 0  # everything is in the database file
        assert journal.statistics().checkpoints == 3
        # Not closed by default: other actors may still be journaling during the same shutdown.
        assert journal.load_strategy_state("key-4") is not None
    finally:
        journal.close()


async def test_close_on_exit_closes_the_journal(mock_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    """With close_on_exit the journal is flushed and closed when the actor is cancelled."""
    cfg = JournalConfig(path=str(tmp_path / "journal.sqlite"), checkpoint_interval_s=30.0)
    journal = Journal.from_config(cfg)
    reports: LatestValue[CheckpointReport] = LatestValue()
    _write(journal, 3)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(run_journal, cfg, journal=journal, reports=reports,
                                                  close_on_exit=True))
            nursery.cancel_scope.cancel(reason="test done")
    _, final = reports.get_nowait()
    assert final.final
    with pytest.raises(InvariantViolation, match="used after close"):
        journal.load_strategy_state("key-1")
    reopened = Journal.from_config(cfg)
    try:
        record = reopened.load_strategy_state("key-2")
        assert record is not None
        assert record.blob["value"] == 2
    finally:
        reopened.close()


async def test_failing_checkpoint_is_fatal(mock_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    """A checkpoint that fails (here: a journal closed under the actor) stops the actor with a FatalError."""
    cfg = JournalConfig(path=str(tmp_path / "journal.sqlite"), checkpoint_interval_s=5.0)
    journal = Journal.from_config(cfg)
    journal.close()

    async def time_passes() -> None:
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(5.0)

    with trio.fail_after(1000), pytest.RaisesGroup(FatalError):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(time_passes)
            await run_journal(cfg, journal=journal)
