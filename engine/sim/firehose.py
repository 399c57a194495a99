"""Firehose: a benchmark-only WebSocket endpoint that pushes pre-templated Backpack frames at a set rate.

The full server sends every frame through hypercorn's ASGI path, one socket write per frame, which caps it at
a few thousand frames per second per core. The engine's benchmarks need more, so this endpoint (its own port,
next to the real server) writes WebSocket frames it encodes itself, many per socket write.

Protocol: connect, optionally send one ``SUBSCRIBE`` naming any of ``depth.<s>``, ``bookTicker.<s>`` and
``trade.<s>`` for the configured symbol (default: all three), then read. Frames are well-formed Backpack frames:
depth ``U == u == previous u + 1``, bookTicker ``u`` equal to the depth update that produced it, trade ids
increasing, E/T in microseconds from the injected host clock. Each connection has its own sequence. The rate
is a ceiling per connection: a client that reads slower gets backpressure (the socket write waits), never a
growing queue. Client pings are answered; a close frame ends the connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NoReturn

import trio
import wsproto
import wsproto.events

__all__ = ["FirehoseStats", "encode_text_frame", "serve_firehose"]

_TICK_S = 0.005


def encode_text_frame(payload: str) -> bytes:
    """One unmasked server-to-client WebSocket text frame (RFC 6455 section 5.2)."""
    data = payload.encode()
    size = len(data)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + data


class FirehoseStats:
    """Counters shared by all firehose connections."""

    __slots__ = ("connections", "frames")

    def __init__(self) -> None:
        self.connections = 0
        self.frames = 0


class _Frames:
    """Generates one connection's frame sequence from string templates."""

    __slots__ = ("_book", "_depth", "_kinds", "_seq", "_symbol", "_trade", "_trade_id")

    def __init__(self, symbol: str, kinds: tuple[str, ...]) -> None:
        self._symbol = symbol
        self._kinds = kinds
        self._depth, self._book, self._trade = f"depth.{symbol}", f"bookTicker.{symbol}", f"trade.{symbol}"
        self._seq = 1_000_000_000
        self._trade_id = 0

    def batch(self, count: int, now_us: int) -> bytes:
        out: list[bytes] = []
        s = self._symbol
        kinds = self._kinds
        for i in range(count):
            kind = kinds[i % len(kinds)]
            ticks = 500_000 + self._seq % 100
            bid = f"{ticks // 10}.{ticks % 10}"
            ask = f"{(ticks + 1) // 10}.{(ticks + 1) % 10}"
            if kind == "depth":
                self._seq += 1
                frame = (f'{{"stream":"{self._depth}","data":{{"E":{now_us},"T":{now_us},"U":{self._seq},'
                         f'"a":[["{ask}","0.50000"]],"b":[["{bid}","0.40000"]],"e":"depth","s":"{s}",'
                         f'"u":{self._seq}}}}}')
            elif kind == "bookTicker":
                frame = (f'{{"stream":"{self._book}","data":{{"A":"0.50000","B":"0.40000","E":{now_us},'
                         f'"T":{now_us},"a":"{ask}","b":"{bid}","e":"bookTicker","s":"{s}","u":{self._seq}}}}}')
            else:
                self._trade_id += 1
                frame = (f'{{"stream":"{self._trade}","data":{{"E":{now_us},"T":{now_us},"a":"1","b":"2",'
                         f'"e":"trade","m":false,"p":"{ask}","q":"0.00100","s":"{s}","t":{self._trade_id}}}}}')
            out.append(encode_text_frame(frame))
        return b"".join(out)


async def serve_firehose(
    host: str,
    port: int,
    *,
    rate: int,
    symbol: str,
    host_now_us: Callable[[], int],
    stats: FirehoseStats,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Listen on ``host:port`` (0 = any) and serve firehose connections; reports the bound port."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]

    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            await _serve_one(stream, rate=rate, symbol=symbol, host_now_us=host_now_us, stats=stats)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, listeners)
        task_status.started(bound)
        await trio.sleep_forever()
    raise AssertionError("unreachable")


async def _serve_one(stream: trio.SocketStream, *, rate: int, symbol: str, host_now_us: Callable[[], int],
                     stats: FirehoseStats) -> None:
    conn = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    accepted = False
    while not accepted:
        data = await stream.receive_some(65536)
        if not data:
            return
        conn.receive_data(data)
        for event in conn.events():
            if isinstance(event, wsproto.events.Request):
                await stream.send_all(conn.send(wsproto.events.AcceptConnection()))
                accepted = True
            else:
                return
    stats.connections += 1
    kinds: list[tuple[str, ...]] = [("depth", "bookTicker", "trade")]
    lock = trio.Lock()
    done = trio.Event()

    async def reader() -> None:
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not data:
                break
            conn.receive_data(data)
            for event in conn.events():
                if isinstance(event, wsproto.events.TextMessage):
                    kinds[0] = _requested(event.data, symbol) or kinds[0]
                elif isinstance(event, wsproto.events.Ping):
                    async with lock:
                        await stream.send_all(conn.send(event.response()))
                elif isinstance(event, wsproto.events.CloseConnection):
                    async with lock:
                        await stream.send_all(conn.send(event.response()))
                    done.set()
                    return
        done.set()

    async def writer() -> None:
        frames = _Frames(symbol, kinds[0])
        per_tick = rate * _TICK_S
        owed = 0.0
        next_wake = trio.current_time()
        current = kinds[0]
        while not done.is_set():
            next_wake = max(next_wake + _TICK_S, trio.current_time())
            await trio.sleep_until(next_wake)
            if kinds[0] is not current:
                current = kinds[0]
                frames = _Frames(symbol, current)
            owed = min(owed + per_tick, 2 * per_tick + 1)
            count = int(owed)
            owed -= count
            if count:
                blob = frames.batch(count, host_now_us())
                async with lock:
                    await stream.send_all(blob)
                stats.frames += count

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            nursery.start_soon(writer)
            await done.wait()
            nursery.cancel_scope.cancel(reason="firehose client left")
    except* (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the client went away mid-write


def _requested(text: str, symbol: str) -> tuple[str, ...] | None:
    try:
        command = json.loads(text)
    except ValueError:
        return None
    if not isinstance(command, dict) or command.get("method") != "SUBSCRIBE":
        return None
    params = command.get("params")
    if not isinstance(params, list):
        return None
    wanted = tuple(k for k in ("depth", "bookTicker", "trade") if f"{k}.{symbol}" in params)
    return wanted or None
