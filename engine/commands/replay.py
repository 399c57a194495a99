"""``python -m engine replay``: summarise a capture, or serve it as a WebSocket feed.

Owns the command's arguments and its edge I/O: reading the capture (``engine.capture`` does the format and
the analysis) and, with ``--serve``, a trio-websocket server on 127.0.0.1.

Invariants: a summary never crashes on bad content (malformed lines and undecodable frames are counted and
reported, exit 0); a file that is not a capture exits 2 with the reason. The server sends each client only
the frames of the streams it subscribed to, in recorded order, spaced by the recorded receive times divided
by ``--speed``, starting at the client's first SUBSCRIBE; after the last frame it closes the connection with
code 1000 ("end of capture"). Frames that name no stream (garbage, error replies to the recorder) are not
replayed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import NoReturn

import attrs
import trio
import trio_websocket

from engine.capture import CaptureError, ReplayFrame, read_capture, render_summary, replay_frames, summarize
from engine.cli import register_command
from engine.runtime.shutdown import run_until_signal

__all__ = [
    "ReplayServer",
    "replay_arguments",
    "run_replay_command",
    "serve_capture",
]

_LOOPBACK = "127.0.0.1"


@attrs.frozen(kw_only=True)
class ReplayServer:
    """What ``serve_capture`` reports once listening."""

    host: str
    port: int
    frames: int

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


def _subscription_change(raw: str | bytes) -> tuple[str, list[str]] | None:
    """``(method, streams)`` of a SUBSCRIBE/UNSUBSCRIBE request, or None for anything else."""
    try:
        command = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        return None
    if not isinstance(command, dict) or command.get("method") not in ("SUBSCRIBE", "UNSUBSCRIBE"):
        return None
    params = command.get("params")
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        return None
    return str(command["method"]), list(params)


async def _read_commands(ws: trio_websocket.WebSocketConnection, subscribed: set[str],
                         first: trio.Event) -> None:
    """Track the client's subscriptions until it disconnects."""
    while True:
        change = _subscription_change(await ws.get_message())
        if change is None:
            await ws.send_message(json.dumps({"id": None, "error": {"code": 4002, "message": "Parse error"}}))
            continue
        method, streams = change
        if method == "SUBSCRIBE":
            subscribed.update(streams)
            first.set()
        else:
            subscribed.difference_update(streams)


async def _play(ws: trio_websocket.WebSocketConnection, frames: Sequence[ReplayFrame], speed: float,
                subscribed: set[str], first: trio.Event) -> None:
    await first.wait()
    start = trio.current_time()
    for frame in frames:
        # sleep_until also checkpoints, so a long run of unsubscribed frames at infinite speed stays fair.
        await trio.sleep_until(start + frame.offset_s / speed)
        if frame.stream is not None and frame.stream in subscribed:
            await ws.send_message(frame.frame)
    await ws.aclose(1000, "end of capture")


async def _serve_client(frames: Sequence[ReplayFrame], speed: float,
                        request: trio_websocket.WebSocketRequest) -> None:
    ws = await request.accept()
    subscribed: set[str] = set()
    first = trio.Event()
    async with trio.open_nursery() as nursery:
        async def reader() -> None:
            try:
                await _read_commands(ws, subscribed, first)
            except trio_websocket.ConnectionClosed:
                # The client went away, or the capture ended: the writer has nothing left to do either.
                nursery.cancel_scope.cancel(reason="connection closed")

        async def writer() -> None:
            with contextlib.suppress(trio_websocket.ConnectionClosed):
                await _play(ws, frames, speed, subscribed, first)
            nursery.cancel_scope.cancel(reason="capture replayed")

        nursery.start_soon(reader)
        nursery.start_soon(writer)


async def serve_capture(
    frames: Sequence[ReplayFrame],
    *,
    port: int = 0,
    speed: float = 1.0,
    task_status: trio.TaskStatus[ReplayServer] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve ``frames`` on 127.0.0.1 to every client that subscribes, until cancelled."""
    if not speed > 0:
        raise ValueError(f"speed must be > 0; got {speed}")
    async with trio.open_nursery() as nursery:
        server: trio_websocket.WebSocketServer = await nursery.start(
            partial(trio_websocket.serve_websocket, partial(_serve_client, frames, speed), _LOOPBACK, port, None))
        task_status.started(ReplayServer(host=_LOOPBACK, port=server.port, frames=len(frames)))
        await trio.sleep_forever()
    raise AssertionError("unreachable")


# --- the command ------------------------------------------------------------------------------------------


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (or inf); got {text!r}") from None
    if math.isnan(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in [0, 65535]; got {value}")
    return value


def replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="capture file written by 'record' (.gz allowed)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--serve", action="store_true",
                        help="serve the capture as a WebSocket feed on 127.0.0.1 instead of summarising it")
    parser.add_argument("--port", type=_port, default=0, help="port for --serve (default 0 = any free port)")
    parser.add_argument("--speed", type=_speed, default=1.0, metavar="N",
                        help="replay N times faster than recorded (inf = no spacing; default 1)")


async def _serve_until_signal(frames: Sequence[ReplayFrame], path: Path, port: int, speed: float) -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            server: ReplayServer = await nursery.start(partial(serve_capture, frames, port=port, speed=speed))
            print(f"replaying {path} ({server.frames} frames, speed {speed:g}x) on {server.ws_url}", flush=True)

    summary = await run_until_signal(main, grace_s=2.0)
    print(summary.describe().replace("engine stopped", "replay server stopped"), file=sys.stderr)


def run_replay_command(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        header, items = read_capture(path)
        if args.serve:
            frames = replay_frames(items)
        else:
            summary = summarize(header, items)
    except CaptureError as exc:
        print(f"error: {path}: not a readable capture: {exc}", file=sys.stderr)
        return 2
    if args.serve:
        try:
            trio.run(_serve_until_signal, frames, path, args.port, args.speed)
        except OSError as exc:
            print(f"error: cannot listen on {_LOOPBACK}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        return 0
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        sys.stdout.write(render_summary(summary))
    return 0


register_command("replay", replay_arguments, run_replay_command,
                 help="summarise a capture (frames, decode errors, depth gaps), or --serve it as a WebSocket feed")
