"""Capture builders shared by the capture tests: headers, well-formed frames, and capture text."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio_websocket

from engine.capture import CAPTURE_VERSION, CaptureHeader, header_line, open_capture_for_writing, record_line

SYMBOL = "BTC_USDC_PERP"


def header(streams: Sequence[str] = ()) -> CaptureHeader:
    return CaptureHeader(version=CAPTURE_VERSION, url="ws://127.0.0.1:1", streams=tuple(streams),
                         start_ms=1_700_000_000_000, start_mono=100.0)


def depth_frame(first: int, last: int, *, event_us: int = 1_700_000_000_000_000, symbol: str = SYMBOL) -> str:
    data: dict[str, Any] = {"e": "depth", "E": event_us, "s": symbol, "U": first, "u": last, "T": event_us,
                            "b": [["100.5", "1.0"]], "a": [["101.0", "0.5"]]}
    return json.dumps({"stream": f"depth.{symbol}", "data": data})


def trade_frame(trade_id: int, *, event_us: int = 1_700_000_000_000_000, symbol: str = SYMBOL) -> str:
    data = {"e": "trade", "E": event_us, "s": symbol, "p": "100.5", "q": "0.1", "b": "1", "a": "2",
            "t": trade_id, "T": event_us, "m": True}
    return json.dumps({"stream": f"trade.{symbol}", "data": data})


def capture_text(frames: Sequence[str | bytes], *, streams: Sequence[str] = (), step_s: float = 0.01) -> str:
    lines = [header_line(header(streams))]
    lines += [record_line(1_700_000_000_000 + i * 10, 100.0 + i * step_s, frame) for i, frame in enumerate(frames)]
    return "".join(lines)


def write_capture(path: Path, frames: Sequence[str | bytes], *, streams: Sequence[str] = (),
                  step_s: float = 0.01) -> Path:
    with open_capture_for_writing(path) as out:
        out.write(capture_text(frames, streams=streams, step_s=step_s))
    return path


@asynccontextmanager
async def ws_client(host: str, port: int) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A trio-websocket client over a stream we own: trio-websocket 0.12 leaves its socket open after a
    server-initiated close (which the replay server does at the end of a capture), so we close it ourselves."""
    stream = await trio.open_tcp_stream(host, port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(nursery, stream, host, "/")
            try:
                yield ws
            finally:
                await ws.aclose()
    finally:
        await stream.aclose()
