"""Shared helpers of the engine-level tests: a config for a fast embedded run, the engine under a nursery,
and waits on latest values and journal rows (never sleeps to wait for something)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from engine.app import EngineProbe, run_engine
from engine.config import EngineConfig
from engine.runtime import LatestValue

__all__ = ["REPO", "engine_config", "poll_until", "running_engine", "subprocess_env", "wait_for"]

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def engine_config(tmp_path: Path, *, speed: float = 2000.0, **sections: dict[str, Any]) -> EngineConfig:
    """The default engine on the embedded simulator, fast, with every file under ``tmp_path``.

    Only daily klines are streamed and backfilled (all the strategy reads), so bars arrive within a second.
    """
    data: dict[str, Any] = {
        "feed": {"kline_intervals": ["1d"]},
        "engine": {"state_dir": str(tmp_path / "var")},
        "journal": {"path": str(tmp_path / "journal.sqlite")},
        "sim": {"speed": speed},
        "status": {"interval_s": 3600.0, "display": "plain"},
        "metrics": {"enabled": False},
    }
    return EngineConfig.from_toml(_merge(data, sections))


@asynccontextmanager
async def running_engine(cfg: EngineConfig, *, observe: Callable[[EngineProbe], None] | None = None
                         ) -> AsyncIterator[EngineProbe]:
    """Run the engine in-process; yield its probe once wired; cancel it (orderly) on exit.

    ``observe`` also gets the probe before any actor starts (to inject simulator faults from the start).
    """
    probes: list[EngineProbe] = []

    def wired(probe: EngineProbe) -> None:
        probes.append(probe)
        if observe is not None:
            observe(probe)

    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_engine(cfg, observe=wired, task_status=task_status))
        yield probes[0]
        nursery.cancel_scope.cancel()


async def wait_for(holder: LatestValue[T], predicate: Callable[[T], bool]) -> T:
    """The first value of ``holder`` (current or future) that satisfies ``predicate``."""
    seen = 0
    while True:
        seen, value = await holder.wait_changed(seen)
        if predicate(value):
            return value


async def poll_until(read: Callable[[], T | None], holder: LatestValue[Any]) -> T:
    """Re-read ``read`` (e.g. a journal query) every time ``holder`` changes until it returns a value.

    The holder (a market view published many times a second) is the event that paces the reads.
    """
    seen = 0
    while True:
        value = read()
        if value is not None:
            return value
        seen, _ = await holder.wait_changed(seen)


def subprocess_env() -> dict[str, str]:
    """The environment for ``python -m engine`` children: this checkout on the path, no API keys."""
    env = {k: v for k, v in os.environ.items() if k not in ("BACKPACK_API_KEY", "BACKPACK_API_SECRET")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    return env


PYTHON = sys.executable
