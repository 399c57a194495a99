"""Tick-to-strategy latency of the data layer, against baselines run in the same process on the same simulator.

Three ways to see the last trade price of BTC_USDC_PERP (127.0.0.1; engine times are host wall-clock times):

* engine: feed actor -> cache actor -> conflating MarketView channel -> a strategy loop, on the simulator's
  firehose trade stream; latency of each new price the strategy sees = its wall clock - the trade's engine
  time (ms resolution, as carried by ``Price.exchange_ms``);
* bare: a trio-websocket receive + decode_frame loop on the same firehose stream; latency = decode time -
  engine time;
* polling: GET /api/v1/trades?limit=1 on the full simulator (speed 1) every 100 ms; latency of each new trade
  = response time - its ``timestamp``.

The three run one after another (not at once) so they do not compete for the two cores. Prints p50/p99 per
path and the ratios engine/bare and polling/engine. Usage: ``python -m bench.bench_feed [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable

import httpx
import trio
import trio_websocket

from actors.cache import run_cache
from actors.feed import run_feed
from engine.backpack.events import Trade
from engine.backpack.frames import decode_frame
from engine.backpack.responses import decode_trades
from engine.market.config import CacheConfig, FeedConfig
from engine.market.feed_events import FeedEvent
from engine.market.prices import Price
from engine.market.view import MarketView
from engine.runtime import open_latest_channel
from engine.sim.config import SimConfig
from engine.sim.server import SimHandle, serve_simulator

__all__ = ["main"]

SYM = "BTC_USDC_PERP"


def wall_ms_f() -> float:
    return time.time_ns() / 1e6


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


async def engine_path(sim: SimHandle, seconds: float) -> list[float]:
    out: list[float] = []
    feed_tx, feed_rx = trio.open_memory_channel[FeedEvent](1000)
    view_tx, views = open_latest_channel[MarketView]()
    feed_cfg = FeedConfig(auto_subscribe_ticker=False, auto_subscribe_depth=False, subscribe_mark_price=False,
                          subscribe_liquidations=False, kline_intervals=())
    assert sim.firehose_url is not None
    async with httpx.AsyncClient(base_url=sim.rest_url) as client, trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_cache, CacheConfig(), inbox=feed_rx, view_out=view_tx,
                                              rest=client, symbols=[SYM], now_ms=wall_ms, intervals=()))
        await nursery.start(functools.partial(run_feed, feed_cfg, ws_url=sim.firehose_url, rest=client, symbols=[SYM],
                                              out=feed_tx, now_ms=wall_ms))
        seen: int | None = None
        with trio.move_on_after(seconds):
            async for view in views:
                last = view.market(SYM).last
                if isinstance(last, Price) and last.source == "ws" and last.exchange_ms != seen:
                    seen = last.exchange_ms
                    if seen is not None:
                        out.append(wall_ms_f() - seen)
        nursery.cancel_scope.cancel(reason="bench over")
    return out


async def bare_path(sim: SimHandle, seconds: float) -> list[float]:
    out: list[float] = []
    assert sim.firehose_url is not None
    async with trio_websocket.open_websocket_url(sim.firehose_url) as ws:
        await ws.send_message(json.dumps({"method": "SUBSCRIBE", "params": [f"trade.{SYM}"]}))
        with trio.move_on_after(seconds):
            while True:
                event = decode_frame(await ws.get_message())
                if isinstance(event, Trade):
                    out.append(wall_ms_f() - event.engine_time_us / 1000)
    return out


async def polling_path(sim: SimHandle, seconds: float, period_s: float = 0.1) -> list[float]:
    out: list[float] = []
    seen: int | None = None
    async with httpx.AsyncClient(base_url=sim.rest_url) as client:
        with trio.move_on_after(seconds):
            next_at = trio.current_time()
            while True:
                response = await client.get("/api/v1/trades", params={"symbol": SYM, "limit": 1})
                trades = decode_trades(response.content)
                if trades and trades[0].trade_id != seen:
                    seen = trades[0].trade_id
                    out.append(wall_ms_f() - trades[0].timestamp_us / 1000)
                next_at += period_s
                await trio.sleep_until(next_at)  # the baseline's own fixed polling schedule
    return out


def summary(name: str, values: list[float]) -> tuple[float, float]:
    if not values:
        print(f"{name:8s} no samples")
        return float("nan"), float("nan")
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(f"{name:8s} n={len(values):6d}  p50={p50:8.2f} ms  p99={p99:8.2f} ms")
    return p50, p99


async def run(seconds: float) -> None:
    cfg = SimConfig(port=0, speed=1.0, step_interval_s=0.05, rate_limits=False, firehose_rate=2000)
    async with trio.open_nursery() as nursery:
        sim: SimHandle = await nursery.start(serve_simulator, cfg)
        paths: dict[str, Callable[[SimHandle, float], object]] = {
            "bare": bare_path, "engine": engine_path, "polling": polling_path}
        results = {}
        for name, path in paths.items():
            results[name] = summary(name, await path(sim, seconds))  # type: ignore[misc]
        nursery.cancel_scope.cancel(reason="bench over")
    (b50, b99), (e50, e99), (p50, p99) = results["bare"], results["engine"], results["polling"]
    print(f"engine / bare     p50 x{e50 / b50:.2f}  p99 x{e99 / b99:.2f}   (cost of feed+cache+view over a bare loop)")
    print(f"polling / engine  p50 x{p50 / e50:.2f}  p99 x{p99 / e99:.2f}   (how much older a 100 ms poller's view is)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement time per path")
    args = parser.parse_args()
    trio.run(run, args.seconds)


if __name__ == "__main__":
    main()
