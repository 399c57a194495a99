"""`python -m engine` as real processes: orderly stop on SIGINT/SIGTERM, and trading an external simulator."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest
import trio

from engine.store.config import JournalConfig
from tests.engine.harness import PYTHON, subprocess_env

SUMMARY = re.compile(r"^engine stopped: received (SIG[A-Z]+); shutdown took [0-9.]+s \(within the [0-9.]+s grace\); "
                     r"(\d+) actor restart\(s\)$", re.MULTILINE)


class Output:
    """Everything a child wrote to one pipe so far, and a way to wait for a pattern in it (no polling)."""

    def __init__(self) -> None:
        self.text = ""
        self.closed = False
        self._changed = trio.Event()

    async def pump(self, stream: trio.abc.ReceiveStream) -> None:
        async with stream:
            async for chunk in stream:
                self.text += chunk.decode(errors="replace")
                self._changed.set()
                self._changed = trio.Event()
        self.closed = True
        self._changed.set()

    async def wait_for(self, pattern: str) -> re.Match[str]:
        while True:
            match = re.search(pattern, self.text, re.MULTILINE)
            if match is not None:
                return match
            if self.closed:
                raise AssertionError(f"output ended without {pattern!r}:\n{self.text[-4000:]}")
            await self._changed.wait()


def _background_job() -> None:
    """What a shell does to a background job: SIGINT ignored (the engine must restore it itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def _spawn(nursery: trio.Nursery, args: list[str], cwd: Path) -> tuple[trio.Process, Output]:
    proc = await trio.lowlevel.open_process(
        [PYTHON, "-m", "engine", *args], cwd=cwd, env=subprocess_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_background_job)
    out = Output()
    assert proc.stderr is not None
    nursery.start_soon(out.pump, proc.stderr)
    return proc, out


async def _stop(proc: trio.Process, out: Output, signum: signal.Signals) -> str:
    """Send ``signum``, wait for exit 0 and all output; the one-line summary it printed."""
    proc.send_signal(signum)
    assert await proc.wait() == 0, out.text[-4000:]
    match = await out.wait_for(SUMMARY.pattern)
    assert out.text.rstrip().endswith(match.group(0))  # the summary is the last line
    return match.group(0)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_run_stops_orderly_on_signal(tmp_path: Path, signum: signal.Signals) -> None:
    """`run --speed 600` started as a background job (SIGINT ignored) exits 0 with the summary on SIGINT/SIGTERM."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            proc, out = await _spawn(nursery, ["run", "--speed", "600"], tmp_path)
            try:
                await out.wait_for(r"reconciled BTC_USDC: ")
                summary = await _stop(proc, out, signum)
            finally:
                proc.kill()
    assert SUMMARY.search(summary) is not None
    assert f"received {signum.name};" in summary
    assert summary.endswith("; 0 actor restart(s)")
    assert "Traceback" not in out.text


async def test_run_trades_against_an_external_simulator(tmp_path: Path) -> None:
    """`simulate --port 0` and `run --rest-url/--ws-url` as two processes: an order fills, both stop on SIGTERM."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            sim, sim_out = await _spawn(nursery, ["simulate", "--port", "0", "--speed", "600"], tmp_path)
            engine: trio.Process | None = None
            try:
                url = (await sim_out.wait_for(r"listening on (http://127\.0\.0\.1:\d+) ")).group(1)
                ws_url = url.replace("http://", "ws://")
                # Daily klines only: the strategy's bars then arrive at once instead of after five other backfills.
                (tmp_path / "engine.toml").write_text('[feed]\nkline_intervals = ["1d"]\n')
                engine, engine_out = await _spawn(nursery, ["run", "--config", "engine.toml", "--rest-url", url,
                                                            "--ws-url", ws_url], tmp_path)
                venue = await engine_out.wait_for(r"venue simulator: REST (\S+), WebSocket (\S+),")
                fill = await engine_out.wait_for(r"order \d+ \(nanpin:BTC_USDC:[^)]+\): SENT -> FILLED")
                engine_summary = await _stop(engine, engine_out, signal.SIGTERM)
                sim.send_signal(signal.SIGTERM)
                sim_rc = await sim.wait()
            finally:
                sim.kill()
                if engine is not None:
                    engine.kill()
    assert venue.group(1) == url
    assert venue.group(2) == ws_url
    assert "simulator listening" not in engine_out.text  # no embedded simulator: it traded the external one
    assert fill.group(0)
    assert "received SIGTERM" in engine_summary
    assert sim_rc == 0, sim_out.text[-4000:]
    assert (tmp_path / JournalConfig().path).exists()  # an external venue keeps the configured journal
