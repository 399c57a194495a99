"""Simulator throughput on loopback: WebSocket frames/s to 1 and 10 clients, REST requests/s; prints a table.

Run: ``PYTHONPATH=. /work/venv/bin/python bench/bench_sim.py [--seconds 5] [--firehose-rate 200000]``.

Server and clients share one process and one trio loop (the numbers are for the pair, on whatever cores the
machine gives; compare rows with each other, not with other machines). Rows:
* replay: the real server at ``speed = inf`` (the stepper runs as fast as the clients read), all public streams
  of BTC_USDC_PERP;
* firehose: pre-templated depth/bookTicker/trade frames at a set rate (the mode the engine's benchmarks use);
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
import trio_websocket

from engine.sim.config import SimConfig
from engine.sim.server import ServerStats, SimHandle, serve_simulator

SYMBOL = "BTC_USDC_PERP"
STREAMS = [f"depth.{SYMBOL}", f"bookTicker.{SYMBOL}", f"trade.{SYMBOL}", f"ticker.{SYMBOL}",
           f"markPrice.{SYMBOL}", f"kline.1m.{SYMBOL}"]


async def _ws_client(url: str, streams: list[str], deadline: float, counts: list[int], index: int) -> None:
    async with trio_websocket.open_websocket_url(url, max_message_size=1 << 20) as ws:
        await ws.send_message(json.dumps({"method": "SUBSCRIBE", "params": streams}))
        with trio.move_on_at(deadline):
            while True:
                await ws.get_message()
                counts[index] += 1


async def measure_ws(handle: SimHandle, *, clients: int, streams: list[str], seconds: float) -> float:
    """Frames per second received in total by ``clients`` concurrent subscribers."""
    counts = [0] * clients
    warmup = 0.5
    start = trio.current_time()
    deadline = start + warmup + seconds
    async with trio.open_nursery() as nursery:
        for i in range(clients):
            nursery.start_soon(_ws_client, handle.ws_url, streams, deadline, counts, i)
        await trio.sleep(warmup)
        at_warmup = sum(counts)
    return (sum(counts) - at_warmup) / seconds


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
        rate, stats = await _with_server(attrs.evolve(common, firehose_rate=firehose_rate),
                                         partial(measure_ws, clients=clients, streams=fire_streams,
                                                 seconds=seconds))
        rows.append((f"firehose {firehose_rate:,}/s, {clients} client(s)", f"{rate:,.0f} frames/s",
                     f"dropped slow {stats.ws_dropped_slow}"))
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
