"""Shared helpers: a real simulator on 127.0.0.1 (port 0), signed REST calls, WebSocket reads with bounds."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio
import trio_websocket

from engine.backpack.signing import Signer, batch_signing_string, signing_string
from engine.sim.config import FaultConfig, SimConfig
from engine.sim.server import SimHandle, serve_simulator

SECRET = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
SIGNER = Signer(SECRET)
SYMBOL = "BTC_USDC_PERP"


def sim_config(*, faults: FaultConfig | None = None, **overrides: Any) -> SimConfig:
    """A fast test configuration: any free port, 60x speed, no taker delay."""
    values: dict[str, Any] = {"port": 0, "speed": 60.0, "taker_speed_bump_ms": 0, "step_interval_s": 0.05}
    values.update(overrides)
    return SimConfig(faults=faults or FaultConfig(), **values)


@asynccontextmanager
async def running_sim(cfg: SimConfig | None = None) -> AsyncIterator[SimHandle]:
    """Serve the simulator for the duration of the block, then cancel it."""
    async with trio.open_nursery() as nursery:
        handle: SimHandle = await nursery.start(serve_simulator, cfg or sim_config())
        try:
            yield handle
        finally:
            nursery.cancel_scope.cancel(reason="test finished")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def signed_headers(instruction: str, params: dict[str, Any], *, signer: Signer = SIGNER,
                   timestamp_ms: int | None = None, window_ms: int = 5000) -> dict[str, str]:
    return signer.headers(instruction, params, timestamp_ms or now_ms(), window_ms)


async def signed(client: httpx.AsyncClient, method: str, path: str, instruction: str,
                 params: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
    """One correctly signed request: query params for GET, a JSON body otherwise."""
    params = params or {}
    headers = signed_headers(instruction, params, **kw)
    if method == "GET":
        return await client.get(path, params=params, headers=headers)
    return await client.request(method, path, content=json.dumps(params),
                                headers={**headers, "Content-Type": "application/json; charset=utf-8"})


async def signed_batch(client: httpx.AsyncClient, orders: list[dict[str, Any]]) -> httpx.Response:
    ts = now_ms()
    headers = {
        "X-API-Key": SIGNER.public_key_b64, "X-Timestamp": str(ts), "X-Window": "5000",
        "X-Signature": SIGNER.sign(batch_signing_string("orderExecute", orders, ts, 5000)),
        "Content-Type": "application/json; charset=utf-8",
    }
    return await client.post("/api/v1/orders", content=json.dumps(orders), headers=headers)


def ws_signature(signer: Signer = SIGNER, *, timestamp_ms: int | None = None, window_ms: int = 5000) -> list[str]:
    ts = timestamp_ms or now_ms()
    return [signer.public_key_b64, signer.sign(signing_string("subscribe", {}, ts, window_ms)), str(ts),
            str(window_ms)]


async def subscribe(ws: trio_websocket.WebSocketConnection, *streams: str, signature: list[str] | None = None,
                    method: str = "SUBSCRIBE") -> None:
    command: dict[str, Any] = {"method": method, "params": list(streams)}
    if signature is not None:
        command["signature"] = signature
    await ws.send_message(json.dumps(command))


async def next_json(ws: trio_websocket.WebSocketConnection) -> dict[str, Any]:
    message = await ws.get_message()
    value: dict[str, Any] = json.loads(message)
    return value


async def wait_frame(ws: trio_websocket.WebSocketConnection, pred: Callable[[dict[str, Any]], bool], *,
                     max_frames: int = 5000) -> dict[str, Any]:
    """The first JSON frame matching ``pred`` (bounded by a frame count; callers add a time bound)."""
    for _ in range(max_frames):
        frame = await next_json(ws)
        if pred(frame):
            return frame
    raise AssertionError(f"no matching frame within {max_frames} frames")


async def collect(ws: trio_websocket.WebSocketConnection, seconds: float) -> list[str]:
    """Every raw message received during ``seconds`` (real time)."""
    out: list[str] = []
    with trio.move_on_after(seconds):
        while True:
            message = await ws.get_message()
            out.append(message if isinstance(message, str) else message.decode())
    return out


async def raw_ws_connect(port: int, *, rcvbuf: int | None = None) -> tuple[trio.SocketStream, Any]:
    """A bare wsproto client (to see protocol pings, or to stop reading): returns after the handshake."""
    import socket

    import wsproto
    import wsproto.events

    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send_all(conn.send(wsproto.events.Request(host="127.0.0.1", target="/")))
    while True:
        data = await stream.receive_some(65536)
        if not data:
            raise AssertionError("server closed during the handshake")
        conn.receive_data(data)
        for event in conn.events():
            if isinstance(event, wsproto.events.AcceptConnection):
                return stream, conn
            raise AssertionError(f"unexpected handshake event {event!r}")


@asynccontextmanager
async def ws_client(sim: SimHandle) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A trio-websocket client over a stream we own: trio-websocket 0.12 leaves its socket open after a
    server-initiated close (it waits for a TCP close it never acts on), so we close the stream ourselves."""
    stream = await trio.open_tcp_stream(sim.host, sim.port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(nursery, stream, sim.host, "/")
            try:
                yield ws
            finally:
                await ws.aclose()
    finally:
        await stream.aclose()


def recording_client(sim: SimHandle) -> tuple[httpx.AsyncClient, list[tuple[str, str, int, bytes]]]:
    """An httpx client that records (method, path, status, body) of every response it receives."""
    records: list[tuple[str, str, int, bytes]] = []

    async def hook(response: httpx.Response) -> None:
        await response.aread()
        records.append((response.request.method, response.request.url.path, response.status_code,
                        response.content))

    return httpx.AsyncClient(base_url=sim.rest_url, event_hooks={"response": [hook]}), records


def decode_all(records: list[tuple[str, str, int, bytes]]) -> int:
    """Decode every recorded response with the project's decoders; returns how many were decoded."""
    from engine.backpack.responses import decode_error, decode_response
    from engine.errors import ApiError, LocalProtocolError

    decoded = 0
    for method, path, status, body in records:
        if status >= 400:
            if body.startswith(b"{"):
                assert isinstance(decode_error(status, body), ApiError)
                decoded += 1
            continue
        try:
            decode_response(path, body, method=method)
        except LocalProtocolError:
            continue  # an endpoint the project does not consume (no decoder registered)
        decoded += 1
    return decoded
