"""Feed and cache against the real simulator on 127.0.0.1 (real sockets, real time, bounded by fail_after)."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from actors.cache import run_cache
from actors.feed import run_feed
from engine.backpack.responses import decode_depth
from engine.errors import FeedDisconnected
from engine.market.config import CacheConfig, FeedConfig
from engine.market.feed_events import BookInvalid, BookState, FeedEvent
from engine.market.prices import Price
from engine.market.view import MarketView
from engine.runtime import ActorSpec, Backoff, RestartPolicy, Supervisor, open_latest_channel
from engine.runtime.channels import LatestReceiver
from engine.sim.config import FaultConfig, SimConfig
from engine.sim.server import SimHandle, serve_simulator

SYM = "BTC_USDC_PERP"
GUARD_S = 30.0
BACKOFF = Backoff(initial_s=0.2, max_s=0.5)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@asynccontextmanager
async def simulator(**faults: Any) -> AsyncIterator[SimHandle]:
    cfg = SimConfig(port=0, speed=60.0, taker_speed_bump_ms=0, step_interval_s=0.05,
                    faults=FaultConfig(**faults))
    async with trio.open_nursery() as nursery:
        handle: SimHandle = await nursery.start(serve_simulator, cfg)
        try:
            yield handle
        finally:
            nursery.cancel_scope.cancel(reason="test finished")


async def until(rx: LatestReceiver[MarketView], pred: Callable[[MarketView], bool]) -> MarketView:
    while True:
        view = await rx.receive()
        if pred(view):
            return view


def ws_price(v: MarketView) -> bool:
    q = v.market(SYM).last
    return isinstance(q, Price) and q.source == "ws" and not q.cached


async def test_engine_data_path_survives_drops_and_stalls(nursery: trio.Nursery) -> None:
    """Fresh ws price; after a drop every stream returns and prices are fresh again; a stalled ticker is caught
    at its limit, REST fallback tags the price rest, and ws takes over when the stream resumes."""
    async with simulator() as sim, httpx.AsyncClient(base_url=sim.rest_url) as client:
        feed_tx, feed_rx = trio.open_memory_channel[FeedEvent](1000)
        view_tx, views = open_latest_channel[MarketView]()
        feed_cfg = FeedConfig(ticker_stall_s=2.0, mark_price_stall_s=30.0, kline_intervals=("1m",))
        cache_cfg = CacheConfig(ws_fresh_s=1.5, cache_max_age_s=2.0, rest_max_age_s=5.0, rest_poll_interval_s=0.5,
                                candle_history=20)
        policy = RestartPolicy(max_restarts=20, within_s=60.0, backoff=BACKOFF)
        specs = [
            ActorSpec(name="cache", policy=policy, run=functools.partial(
                run_cache, cache_cfg, inbox=feed_rx, view_out=view_tx, rest=client, symbols=[SYM], now_ms=wall_ms,
                intervals=("1m",))),
            ActorSpec(name="feed", policy=policy, depends_on=("cache",), run=functools.partial(
                run_feed, feed_cfg, ws_url=sim.ws_url, rest=client, symbols=[SYM], out=feed_tx, now_ms=wall_ms)),
        ]
        supervisor = Supervisor(specs, rng=random.Random(7))
        nursery.start_soon(supervisor.run)
        with trio.fail_after(GUARD_S):
            v = await until(views, lambda v: ws_price(v) and v.market(SYM).book is not None)
            book = v.market(SYM).book
            assert book is not None
            assert book.best_bid < book.best_ask
            # 1. drop: the feed is restarted, every subscription restored, fresh ws prices within the backoff bound
            sim.faults.drop_connections()
            dropped = trio.current_time()
            v = await until(views, lambda v: v.quality.reconnects >= 1)
            v = await until(views, lambda v: ws_price(v) and v.as_of_s > dropped)
            assert trio.current_time() - dropped < BACKOFF.max_s + 3.0
            assert supervisor.statistics().actor("feed").restarts >= 1
            # 2. stall the ticker and trades: detected, REST fallback engaged, then ws again on resume
            sim.faults.stall(f"ticker.{SYM}", f"trade.{SYM}")
            v = await until(views, lambda v: getattr(v.market(SYM).last, "source", None) == "rest")
            q = v.market(SYM).last
            assert isinstance(q, Price)
            assert q.value > 0
            sim.faults.resume()
            await until(views, ws_price)
        supervisor.shutdown("test done")


async def test_depth_gaps_resync_and_local_book_matches_the_simulator(nursery: trio.Nursery) -> None:
    """With depth frames skipped, the feed resyncs (counted) and its book equals the simulator's at the same id."""
    async with simulator(depth_gap_rate=0.05) as sim, httpx.AsyncClient(base_url=sim.rest_url) as client:
        tx, rx = trio.open_memory_channel[FeedEvent](10_000)
        cfg = FeedConfig(auto_subscribe_ticker=False, subscribe_trades=False, subscribe_mark_price=False,
                         subscribe_liquidations=False, kline_intervals=(), depth_levels=1000)
        nursery.start_soon(functools.partial(run_feed, cfg, ws_url=sim.ws_url, rest=client, symbols=[SYM], out=tx,
                                             now_ms=wall_ms))
        with trio.fail_after(GUARD_S):
            gaps = 0
            async for ev in rx:
                if isinstance(ev, BookInvalid):
                    gaps += ev.gap
                if gaps >= 2:
                    break
            matched = False
            while not matched:
                snap = decode_depth((await client.get("/api/v1/depth", params={"symbol": SYM, "limit": 1000})).content)
                async for ev in rx:
                    if isinstance(ev, BookState) and ev.update_id >= snap.last_update_id:
                        break
                assert isinstance(ev, BookState)
                if ev.update_id == snap.last_update_id:
                    n = min(len(ev.bids), len(snap.bids), len(ev.asks), len(snap.asks))
                    assert n > 0
                    assert ev.bids[:n] == tuple(reversed(snap.bids))[:n]  # the wire lists bids ascending
                    assert ev.asks[:n] == snap.asks[:n]
                    matched = True
        assert gaps >= 2
        assert all(p > Decimal(0) for p, _ in ev.bids)
        nursery.cancel_scope.cancel(reason="test done")


async def test_refused_handshake_is_a_feed_disconnect_not_a_group() -> None:
    """A 403-refused WebSocket handshake ends run_feed with a bare FeedDisconnected caused by ConnectionRejected."""
    async with simulator() as sim, httpx.AsyncClient(base_url=sim.rest_url) as client:
        sim.faults.refuse_connections(60.0)
        tx, _rx = trio.open_memory_channel[FeedEvent](100)
        with trio.fail_after(GUARD_S), pytest.raises(FeedDisconnected, match="403") as info:
            await run_feed(FeedConfig(), ws_url=sim.ws_url, rest=client, symbols=[SYM], out=tx, now_ms=wall_ms)
        assert isinstance(info.value.__cause__, trio_websocket.ConnectionRejected)
        assert sim.faults.statistics().connections_refused >= 1


async def test_connection_refused_by_the_os_is_a_feed_disconnect() -> None:
    """Nothing listening on the port: run_feed raises FeedDisconnected caused by the OSError, not the OSError."""
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but never listening: connections to it are refused
        tx, _rx = trio.open_memory_channel[FeedEvent](100)
        with trio.fail_after(GUARD_S), pytest.raises(FeedDisconnected) as info:
            await run_feed(FeedConfig(), ws_url=f"ws://127.0.0.1:{port}/", rest=f"http://127.0.0.1:{port}",
                           symbols=[SYM], out=tx, now_ms=wall_ms)
        assert isinstance(info.value.__cause__, OSError)


async def test_engine_survives_a_refusal_window_and_the_feed_comes_back(nursery: trio.Nursery) -> None:
    """Connections dropped, then handshakes refused (403) for a while: the supervisor keeps restarting the feed
    (nothing fatal, the engine keeps running) and fresh ws prices return once the simulator accepts again."""
    async with simulator() as sim, httpx.AsyncClient(base_url=sim.rest_url) as client:
        feed_tx, feed_rx = trio.open_memory_channel[FeedEvent](1000)
        view_tx, views = open_latest_channel[MarketView]()
        feed_cfg = FeedConfig(kline_intervals=("1m",))
        cache_cfg = CacheConfig(ws_fresh_s=1.5, cache_max_age_s=2.0, rest_max_age_s=5.0, rest_poll_interval_s=0.5,
                                candle_history=20)
        policy = RestartPolicy(max_restarts=50, within_s=60.0, backoff=BACKOFF)
        specs = [
            ActorSpec(name="cache", policy=policy, run=functools.partial(
                run_cache, cache_cfg, inbox=feed_rx, view_out=view_tx, rest=client, symbols=[SYM], now_ms=wall_ms,
                intervals=("1m",))),
            ActorSpec(name="feed", policy=policy, depends_on=("cache",), run=functools.partial(
                run_feed, feed_cfg, ws_url=sim.ws_url, rest=client, symbols=[SYM], out=feed_tx, now_ms=wall_ms)),
        ]
        supervisor = Supervisor(specs, rng=random.Random(7))
        stopped = trio.Event()

        async def run_supervisor() -> None:
            await supervisor.run()
            stopped.set()

        nursery.start_soon(run_supervisor)
        refusal_s = 1.5
        with trio.fail_after(GUARD_S):
            await until(views, ws_price)
            sim.faults.refuse_connections(refusal_s)
            sim.faults.drop_connections()
            accepting_at = trio.current_time() + refusal_s
            await until(views, lambda v: ws_price(v) and v.as_of_s > accepting_at)
        assert sim.faults.statistics().connections_refused >= 1
        feed = supervisor.statistics().actor("feed")
        assert feed.restarts >= 2  # the drop, then at least one refused attempt
        assert feed.last_error is not None
        assert "FeedDisconnected" in feed.last_error or "403" in feed.last_error or "closed" in feed.last_error
        assert not stopped.is_set()
        assert supervisor.statistics().shutdown_reason is None
        supervisor.shutdown("test done")
