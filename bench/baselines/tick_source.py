"""The benchmark's tick source: a loopback Backpack-format WebSocket server whose prices encode their send time.

Run as a subprocess (``python -m bench.baselines.tick_source``) so the server does not share a process (or a
GIL) with the consumer being measured. With ``--rest`` it also serves the simulator's REST API (for
``/api/v1/markets``, used by ccxt's ``load_markets``, and the engine cache's REST side). On start it prints one
JSON line ``{"ws": ..., "rest": ...}`` to stdout (``rest`` empty without ``--rest``).

Protocol: connect, send one ``SUBSCRIBE`` with any ``trade.<symbol>`` / ``ticker.<symbol>`` stream names (any
symbol is accepted, so many fake markets can be subscribed), then read. Two modes, per server:

* ``--rate R``: R frames/s in total, round-robin over the subscribed streams, each frame stamped (``E``, ``T``
  and the price, see ``ticks.send_price``) with the wall clock just before it is written. Frames due in the
  same 1 ms tick go out in one socket write. With ``--log PATH`` every send time is written to PATH (JSON) when
  the parent closes our stdin, so the parent can compute the latency of every tick, not only of those seen.
* ``--burst N``: 0.3 s after the subscription, N frames as fast as the socket takes them (TCP backpressure
  sets the pace), prices ``ticks.burst_price(seq)`` and ``E``/``T`` the burst start; then silence.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import trio
import wsproto
import wsproto.events

from bench.baselines.ticks import burst_price, now_us, send_price
from engine.sim.config import SimConfig
from engine.sim.firehose import encode_text_frame
from engine.sim.server import SimHandle, serve_simulator

__all__ = ["frame_for", "main"]

_TICK_S = 0.001
_CHUNK = 256


def frame_for(stream: str, price: str, stamp_us: int, trade_id: int) -> bytes:
    """One encoded WebSocket frame for ``stream`` (``trade.<s>`` or ``ticker.<s>``) carrying ``price``."""
    kind, _, symbol = stream.partition(".")
    if kind == "ticker":
        body = (f'{{"stream":"{stream}","data":{{"E":{stamp_us},"V":"1000.0","c":"{price}","e":"ticker",'
                f'"h":"60000","l":"40000","n":{trade_id},"o":"50000","s":"{symbol}","v":"1.0"}}}}')
    else:
        body = (f'{{"stream":"{stream}","data":{{"E":{stamp_us},"T":{stamp_us},"a":"1","b":"2","e":"trade",'
                f'"m":false,"p":"{price}","q":"0.00100","s":"{symbol}","t":{trade_id}}}}}')
    return encode_text_frame(body)


def _streams(text: str) -> list[str]:
    try:
        command: Any = json.loads(text)
    except ValueError:
        return []
    if not isinstance(command, dict) or command.get("method") != "SUBSCRIBE":
        return []
    params = command.get("params")
    if not isinstance(params, list):
        return []
    return [p for p in params if isinstance(p, str) and p.split(".", 1)[0] in ("trade", "ticker")]


async def _serve_one(stream: trio.SocketStream, *, rate: int, burst: int, sent: list[int]) -> None:
    conn = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    lock = trio.Lock()
    subscribed: list[str] = []
    have_streams = trio.Event()
    done = trio.Event()

    async def send(data: bytes) -> None:
        async with lock:
            await stream.send_all(data)

    async def reader() -> None:
        while True:
            try:
                data = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                break
            if not data:
                break
            conn.receive_data(data)
            for event in conn.events():
                if isinstance(event, wsproto.events.Request):
                    await send(conn.send(wsproto.events.AcceptConnection()))
                elif isinstance(event, wsproto.events.TextMessage):
                    wanted = _streams(event.data)
                    if wanted and not subscribed:
                        subscribed.extend(wanted)
                        have_streams.set()
                elif isinstance(event, wsproto.events.Ping):
                    await send(conn.send(event.response()))
                elif isinstance(event, wsproto.events.CloseConnection):
                    await send(conn.send(event.response()))
                    done.set()
                    return
        done.set()

    async def rate_writer() -> None:
        await have_streams.wait()
        per_tick = rate * _TICK_S
        owed = 0.0
        seq = 0
        next_wake = trio.current_time()
        while True:
            next_wake = max(next_wake + _TICK_S, trio.current_time())
            await trio.sleep_until(next_wake)
            owed = min(owed + per_tick, 4 * per_tick + 1)
            count = int(owed)
            owed -= count
            if not count:
                continue
            parts = []
            for _ in range(count):
                us = now_us()
                sent.append(us)
                parts.append(frame_for(subscribed[seq % len(subscribed)], send_price(us), us, seq))
                seq += 1
            await send(b"".join(parts))

    async def burst_writer() -> None:
        await have_streams.wait()
        await trio.sleep(0.3)
        start = now_us()
        for first in range(0, burst, _CHUNK):
            blob = b"".join(frame_for(subscribed[seq % len(subscribed)], burst_price(seq), start, seq)
                            for seq in range(first, min(first + _CHUNK, burst)))
            await send(blob)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            nursery.start_soon(burst_writer if burst else rate_writer)
            await done.wait()
            nursery.cancel_scope.cancel(reason="client left")
    except* (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the client went away mid-write


async def _serve(rate: int, burst: int, log: str, rest: bool) -> None:
    sent: list[int] = []
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            await _serve_one(stream, rate=rate, burst=burst, sent=sent)

    async with trio.open_nursery() as nursery:
        rest_url = ""
        if rest:
            sim: SimHandle = await nursery.start(serve_simulator, SimConfig(port=0, rate_limits=False))
            rest_url = sim.rest_url
        await nursery.start(trio.serve_listeners, handler, listeners)
        print(json.dumps({"ws": f"ws://127.0.0.1:{port}", "rest": rest_url}), flush=True)
        # The parent ends us by closing our stdin.
        async with trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())) as stdin:
            while await stdin.receive_some(4096):
                pass
        if log:
            await trio.Path(log).write_text(json.dumps(sent))
        nursery.cancel_scope.cancel(reason="parent closed stdin")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="frames per second in rate mode")
    parser.add_argument("--log", default="", help="on exit, write every rate-mode send time (µs) here as JSON")
    parser.add_argument("--rest", action="store_true", help="also serve the simulator's REST API")
    parser.add_argument("--burst", type=int, default=0, help="send this many frames as fast as possible instead")
    args = parser.parse_args()
    trio.run(_serve, args.rate, args.burst, args.log, args.rest)


if __name__ == "__main__":
    main()
