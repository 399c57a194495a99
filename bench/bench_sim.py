"""Simulator throughput on loopback: WebSocket frames/s to 1 and 10 clients, REST requests/s; prints a table.

Run: ``PYTHONPATH=. /work/venv/bin/python bench/bench_sim.py [--seconds 5] [--firehose-rate 200000]``.

Server and clients share one process and one trio loop (the numbers are for the pair, on whatever cores the
machine gives; compare rows with each other, not with other machines). Rows:
* replay: the real server at ``speed = inf`` (the stepper runs as fast as the clients read), all public streams
  of BTC_USDC_PERP;
* server WS path: the real server's fan-out and hypercorn path, fed synthetic ticker Emits as fast as the
  clients drain them (the ceiling of the full server, independent of the core's cost);
* firehose: the benchmark endpoint (``firehose_rate``): pre-templated depth/bookTicker/trade frames written in
  batches (the mode the engine's benchmarks use);
* REST: concurrent httpx clients on ``/api/v1/ping`` and ``/api/v1/depth?limit=5``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Awaitable, Callable
from functools import partial

import attrs
import httpx
import trio
import wsproto
import wsproto.events

from engine.sim.config import SimConfig
from engine.sim.core import Emit
from engine.sim.server import ServerStats, SimHandle, serve_simulator

SYMBOL = "BTC_USDC_PERP"
STREAMS = [f"depth.{SYMBOL}", f"bookTicker.{SYMBOL}", f"trade.{SYMBOL}", f"ticker.{SYMBOL}",
           f"markPrice.{SYMBOL}", f"kline.1m.{SYMBOL}"]


def _count_frames(buf: bytearray) -> tuple[int, int]:
    """Count complete unmasked server frames at the front of ``buf``: (text/binary frames, bytes consumed)."""
    frames = 0
    pos = 0
    end = len(buf)
    while end - pos >= 2:
        opcode = buf[pos] & 0x0F
        size = buf[pos + 1] & 0x7F
        head = 2
        if size == 126:
            if end - pos < 4:
                break
            size = int.from_bytes(buf[pos + 2:pos + 4], "big")
            head = 4
        elif size == 127:
            if end - pos < 10:
                break
            size = int.from_bytes(buf[pos + 2:pos + 10], "big")
            head = 10
        if end - pos < head + size:
            break
        if opcode in (0x1, 0x2):
            frames += 1
        pos += head + size
    return frames, pos


async def _ws_client(url: str, streams: list[str], deadline: float, counts: list[int], index: int) -> None:
    # A counting client (wsproto for the handshake, then bare frame headers) so that the row measures what the
    # server pushes, not the cost of a client library's message parsing.
    host_port = url.removeprefix("ws://")
    host, _, port = host_port.rpartition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await stream.send_all(conn.send(wsproto.events.Request(host=host, target="/")))
        buf = bytearray()
        accepted = False
        while not accepted:
            data = await stream.receive_some(65536)
            if not data:
                return
            conn.receive_data(data)
            for event in conn.events():
                if isinstance(event, wsproto.events.AcceptConnection):
                    accepted = True
        await stream.send_all(conn.send(wsproto.events.TextMessage(
            data=json.dumps({"method": "SUBSCRIBE", "params": streams}))))
        with trio.move_on_at(deadline):
            while True:
                data = await stream.receive_some(1 << 18)
                if not data:
                    return
                buf += data
                frames, used = _count_frames(buf)
                del buf[:used]
                counts[index] += frames


async def measure_ws(handle: SimHandle, *, clients: int, streams: list[str], seconds: float,
                     firehose: bool = False) -> float:
    """Frames per second received in total by ``clients`` concurrent subscribers."""
    url = handle.firehose_url if firehose else handle.ws_url
    assert url is not None
    counts = [0] * clients
    warmup = 0.5
    start = trio.current_time()
    deadline = start + warmup + seconds
    async with trio.open_nursery() as nursery:
        for i in range(clients):
            nursery.start_soon(_ws_client, url, streams, deadline, counts, i)
        await trio.sleep(warmup)
        at_warmup = sum(counts)
    return (sum(counts) - at_warmup) / seconds


async def measure_publish(handle: SimHandle, *, clients: int, seconds: float) -> float:
    """The full server's WebSocket path alone: synthetic Emits published as fast as the clients drain them."""
    stream = f"ticker.{SYMBOL}"
    payload = {"e": "ticker", "E": 0, "s": SYMBOL, "o": "40000.1", "c": "40100.2", "h": "41000", "l": "39000",
               "v": "1234.56789", "V": "49382716.3", "n": 4321}
    batch = [Emit(stream=stream, data=payload)] * 64
    app = handle.app

    async def produce() -> None:
        while True:
            app.publish(batch)
            for conn in list(app.connections):
                await conn.wait_backlog_at_most(app.cfg.ws_queue_size // 2)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        rate = await measure_ws(handle, clients=clients, streams=[stream], seconds=seconds)
        nursery.cancel_scope.cancel(reason="measured")
    return rate


async def measure_rest(handle: SimHandle, *, path: str, params: dict[str, str], concurrency: int,
                       seconds: float) -> float:
    """Requests per second answered 200 by ``concurrency`` keep-alive clients."""
    done = 0
    deadline = trio.current_time() + seconds

    async def worker() -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=handle.rest_url) as client:
            with trio.move_on_at(deadline):
                while True:
                    reply = await client.get(path, params=params)
                    if reply.status_code == 200:
                        done += 1

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return done / seconds


async def _with_server(cfg: SimConfig, body: Callable[[SimHandle], Awaitable[float]]) -> tuple[float, ServerStats]:
    async with trio.open_nursery() as nursery:
        handle: SimHandle = await nursery.start(serve_simulator, cfg)
        result = await body(handle)
        stats = handle.statistics()
        nursery.cancel_scope.cancel(reason="benchmark row done")
    return result, stats


async def run(seconds: float, firehose_rate: int) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    common = SimConfig(port=0, taker_speed_bump_ms=0, rate_limits=False, ws_queue_size=65536)
    fire_streams = [f"depth.{SYMBOL}", f"bookTicker.{SYMBOL}", f"trade.{SYMBOL}"]
    for clients in (1, 10):
        rate, stats = await _with_server(attrs.evolve(common, speed=math.inf),
                                         partial(measure_ws, clients=clients, streams=STREAMS, seconds=seconds))
        rows.append((f"replay speed=inf, {clients} client(s)", f"{rate:,.0f} frames/s",
                     f"steps {stats.steps}, dropped slow {stats.ws_dropped_slow}"))
    for clients in (1, 10):
        rate, stats = await _with_server(common, partial(measure_publish, clients=clients, seconds=seconds))
        rows.append((f"server WS path (publish loop), {clients} client(s)", f"{rate:,.0f} frames/s",
                     f"dropped slow {stats.ws_dropped_slow}"))
    for clients in (1, 10):
        rate, stats = await _with_server(attrs.evolve(common, firehose_rate=firehose_rate),
                                         partial(measure_ws, clients=clients, streams=fire_streams,
                                                 seconds=seconds, firehose=True))
        rows.append((f"firehose ceiling {firehose_rate:,}/s per client, {clients} client(s)",
                     f"{rate:,.0f} frames/s", f"server wrote {stats.firehose_frames:,} frames"))
    for path, params in (("/api/v1/ping", {}), ("/api/v1/depth", {"symbol": SYMBOL, "limit": "5"})):
        rate, _ = await _with_server(common, partial(measure_rest, path=path, params=params, concurrency=8,
                                                     seconds=seconds))
        rows.append((f"REST GET {path}, 8 concurrent", f"{rate:,.0f} req/s", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per row")
    parser.add_argument("--firehose-rate", type=int, default=200_000, help="firehose frames per second")
    args = parser.parse_args()
    rows = trio.run(run, args.seconds, args.firehose_rate)
    width = max(len(r[0]) for r in rows)
    print(f"{'scenario':<{width}}  {'throughput':>20}  notes")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>20}  {note}")


if __name__ == "__main__":
    main()
