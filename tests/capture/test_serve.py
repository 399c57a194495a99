"""``replay --serve``: a capture replayed over a real WebSocket on 127.0.0.1, per subscription, in order."""

from __future__ import annotations

import json

import pytest
import trio
import trio_websocket

from engine.capture import ReplayFrame, frame_stream
from engine.commands.replay import ReplayServer, serve_capture
from tests.capture.helpers import SYMBOL, depth_frame, trade_frame, ws_client

TRADES = f"trade.{SYMBOL}"
DEPTH = f"depth.{SYMBOL}"


def _frames(step_s: float) -> list[ReplayFrame]:
    raw = [trade_frame(1), depth_frame(1, 2), "garbage", trade_frame(2), depth_frame(3, 4), trade_frame(3)]
    return [ReplayFrame(offset_s=i * step_s, stream=frame_stream(f), frame=f) for i, f in enumerate(raw)]


async def _receive_until_closed(ws: trio_websocket.WebSocketConnection) -> tuple[list[str | bytes], int | None]:
    got: list[str | bytes] = []
    while True:
        try:
            got.append(await ws.get_message())
        except trio_websocket.ConnectionClosed as exc:
            return got, None if exc.reason is None else exc.reason.code


async def test_serve_sends_only_subscribed_streams_in_order_with_spacing() -> None:
    """A subscriber gets only its stream's frames, in recorded order, spaced by offset/speed, then a 1000 close."""
    frames = _frames(0.2)
    with trio.fail_after(3):
        async with trio.open_nursery() as nursery:
            server: ReplayServer = await nursery.start(lambda task_status: serve_capture(
                frames, speed=2.0, task_status=task_status))
            assert server.ws_url.startswith("ws://127.0.0.1:")
            async with ws_client(server.host, server.port) as ws:
                await ws.send_message(json.dumps({"method": "SUBSCRIBE", "params": [TRADES]}))
                start = trio.current_time()
                got, code = await _receive_until_closed(ws)
                elapsed = trio.current_time() - start
            nursery.cancel_scope.cancel(reason="test finished")
    assert got == [trade_frame(1), trade_frame(2), trade_frame(3)]
    assert code == 1000
    # The last trade is recorded 1.0 s after the first; at speed 2 it arrives about 0.5 s after subscribing.
    assert 0.45 <= elapsed < 2.0


@pytest.mark.parametrize("speed", [float("inf"), 1000.0])
async def test_two_clients_each_get_their_own_streams(speed: float) -> None:
    """Two concurrent clients subscribed to different streams each receive exactly their streams' frames."""
    frames = _frames(0.01)
    results: dict[str, list[str | bytes]] = {}

    async def client(server: ReplayServer, stream: str) -> None:
        async with ws_client(server.host, server.port) as ws:
            await ws.send_message(json.dumps({"method": "SUBSCRIBE", "params": [stream]}))
            results[stream], _ = await _receive_until_closed(ws)

    with trio.fail_after(3):
        async with trio.open_nursery() as nursery:
            server: ReplayServer = await nursery.start(lambda task_status: serve_capture(
                frames, speed=speed, task_status=task_status))
            async with trio.open_nursery() as clients:
                clients.start_soon(client, server, TRADES)
                clients.start_soon(client, server, DEPTH)
            nursery.cancel_scope.cancel(reason="test finished")
    assert results == {TRADES: [trade_frame(1), trade_frame(2), trade_frame(3)],
                       DEPTH: [depth_frame(1, 2), depth_frame(3, 4)]}


async def test_a_bad_request_gets_an_error_frame() -> None:
    """A request that is not SUBSCRIBE/UNSUBSCRIBE gets the exchange's parse-error frame; nothing is replayed."""
    with trio.fail_after(3):
        async with trio.open_nursery() as nursery:
            server: ReplayServer = await nursery.start(lambda task_status: serve_capture(
                _frames(0.0), task_status=task_status))
            async with ws_client(server.host, server.port) as ws:
                await ws.send_message("hello")
                reply = json.loads(await ws.get_message())
            nursery.cancel_scope.cancel(reason="test finished")
    assert reply["error"]["code"] == 4002
