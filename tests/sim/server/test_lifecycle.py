"""Starting and stopping: cancel stops the server and frees the port; the CLI exits 0 on SIGTERM and SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
import trio

from engine.sim.server import SimHandle, serve_simulator
from tests.sim.server.conftest import sim_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


async def test_cancel_stops_the_server_and_frees_the_port() -> None:
    """Cancelling serve_simulator returns promptly and the port no longer accepts connections."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            handle: SimHandle = await nursery.start(serve_simulator, sim_config())
            async with httpx.AsyncClient(base_url=handle.rest_url) as client:
                assert (await client.get("/api/v1/ping")).text == "pong"
            nursery.cancel_scope.cancel(reason="test")
        with pytest.raises(OSError, match="connect"):
            await trio.open_tcp_stream("127.0.0.1", handle.port)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_cli_prints_urls_and_stops_on_signal(signum: int) -> None:
    """`simulate` prints one line with both URLs when listening and exits 0 on SIGTERM/SIGINT."""
    with trio.fail_after(40):
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "engine.sim.cli", "simulate", "--port", "0", "--speed", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": ROOT})
        try:
            assert proc.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(1)
                assert chunk, "simulator exited before printing its URLs"
                line += chunk
            text = line.decode()
            assert "REST http://127.0.0.1:" in text
            assert "WebSocket ws://127.0.0.1:" in text
            rest_url = text.split("REST ")[1].split()[0]
            async with httpx.AsyncClient(base_url=rest_url) as client:
                assert (await client.get("/api/v1/ping")).text == "pong"
            proc.send_signal(signum)
            assert await proc.wait() == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
