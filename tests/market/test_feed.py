"""Feed actor against a scripted Backpack-shaped WebSocket server on 127.0.0.1 (real sockets, real time)."""

from __future__ import annotations

import functools
import random
from decimal import Decimal

import httpx
import pytest
import trio

from actors.feed import run_feed
from engine.backpack.events import Ticker
from engine.backpack.signing import Signer
from engine.errors import FeedDisconnected, FeedStale, RestartIntensityExceeded
from engine.market.config import FeedConfig
from engine.market.feed_events import (
    BookInvalid,
    BookState,
    DecodeFailed,
    FeedEvent,
    FeedStatus,
    Received,
    StreamStalled,
)
from engine.market.streams import plan_streams
from engine.runtime import ActorSpec, Backoff, RestartPolicy, Supervisor
from tests.market.fake_exchange import FakeExchange

SYM = "BTC_USDC_PERP"
GUARD_S = 10.0


def wall_ms() -> int:
    return 1_788_000_000_000


def cfg(**kw: object) -> FeedConfig:
    base: dict[str, object] = {"ticker_stall_s": 5.0, "mark_price_stall_s": 5.0}
    base.update(kw)
    return FeedConfig(**base)  # type: ignore[arg-type]


async def next_of(rx: trio.MemoryReceiveChannel[FeedEvent], kind: type) -> FeedEvent:
    async for ev in rx:
        if isinstance(ev, kind):
            return ev
    raise AssertionError("channel closed")


async def test_subscribes_every_configured_stream_and_forwards_events(nursery: trio.Nursery) -> None:
    """One connection carries every configured stream; a ticker frame arrives as a Received Ticker."""
    fake = FakeExchange()
    await nursery.start(fake.serve)
    tx, rx = trio.open_memory_channel[FeedEvent](100)
    c = cfg()
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S):
            await nursery.start(functools.partial(run_feed, c, ws_url=fake.url, rest=client, symbols=[SYM],
                                                  out=tx, now_ms=wall_ms))
            await fake.wait_subscribed(1)
            assert sorted(fake.subscriptions[0]) == sorted(plan_streams(c, [SYM], private=False).public)
            assert "kline.4h.BTC_USDC_PERP" in fake.subscriptions[0]
            assert "markPrice.BTC_USDC_PERP" in fake.subscriptions[0]
            await fake.ticker(SYM, "100.5")
            ev = await next_of(rx, Received)
            assert isinstance(ev, Received)
            assert isinstance(ev.event, Ticker)
            assert ev.event.last_price == Decimal("100.5")
            assert ev.recv_ms == wall_ms()
        nursery.cancel_scope.cancel(reason="test done")


async def test_disabled_options_are_honoured(nursery: trio.Nursery) -> None:
    """Ticker, depth, trades, marks, liquidations and klines can each be switched off."""
    c = cfg(auto_subscribe_ticker=False, auto_subscribe_depth=False, subscribe_trades=False,
            subscribe_mark_price=False, subscribe_liquidations=False, kline_intervals=("1m",))
    assert plan_streams(c, [SYM], private=False).public == ("kline.1m.BTC_USDC_PERP",)
    assert plan_streams(cfg(), ["BTC_USDC"], private=False).public.count("markPrice.BTC_USDC") == 0


async def test_stall_is_detected_at_the_stream_limit(nursery: trio.Nursery) -> None:
    """A silent ticker ends the attempt with FeedStale after its limit, not before, reporting the stream."""
    fake = FakeExchange()
    await nursery.start(fake.serve)
    tx, rx = trio.open_memory_channel[FeedEvent](100)
    c = cfg(ticker_stall_s=0.5, auto_subscribe_depth=False, subscribe_mark_price=False)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S):
            start = trio.current_time()
            with pytest.raises(FeedStale, match="ticker.BTC_USDC_PERP silent"):
                await run_feed(c, ws_url=fake.url, rest=client, symbols=[SYM], out=tx, now_ms=wall_ms)
            elapsed = trio.current_time() - start
    assert 0.5 <= elapsed < 2.0
    events = [rx.receive_nowait() for _ in range(rx.statistics().current_buffer_used)]
    stalled = [e for e in events if isinstance(e, StreamStalled)]
    assert [s.stream for s in stalled] == ["ticker.BTC_USDC_PERP"]
    assert isinstance(events[-1], FeedStatus)
    assert events[-1].state == "disconnected"


async def test_frames_keep_a_stream_alive(nursery: trio.Nursery) -> None:
    """A ticker arriving inside its limit pushes the stall deadline forward."""
    fake = FakeExchange()
    await nursery.start(fake.serve)
    tx, rx = trio.open_memory_channel[FeedEvent](1000)
    c = cfg(ticker_stall_s=0.6, auto_subscribe_depth=False, subscribe_mark_price=False)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S):
            start = trio.current_time()
            await nursery.start(functools.partial(run_feed, c, ws_url=fake.url, rest=client, symbols=[SYM],
                                                  out=tx, now_ms=wall_ms))
            for _ in range(6):
                await fake.ticker(SYM, "100")
                await next_of(rx, Received)
                await trio.sleep(0.2)  # the cadence under test: frames 0.2 s apart keep a 0.6 s limit alive
            assert trio.current_time() - start > 1.2
            assert fake.connections[-1].closed is None
        nursery.cancel_scope.cancel(reason="test done")


async def test_disconnect_restarts_and_restores_every_subscription(nursery: trio.Nursery) -> None:
    """Under the supervisor a dropped socket is a restart: every stream (and the signed private one) comes back."""
    fake = FakeExchange()
    await nursery.start(fake.serve)
    signer, _ = Signer.generate()
    tx, rx = trio.open_memory_channel[FeedEvent](1000)
    clock = iter(range(1_788_000_000_000, 1_788_000_100_000, 1000))
    c = cfg(auto_subscribe_depth=False)
    policy = RestartPolicy(max_restarts=3, within_s=60.0, backoff=Backoff(initial_s=0.2, max_s=0.2))
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        spec = ActorSpec(name="feed", policy=policy, run=functools.partial(
            run_feed, c, ws_url=fake.url, rest=client, symbols=[SYM], out=tx, now_ms=lambda: next(clock),
            signer=signer))
        supervisor = Supervisor([spec], rng=random.Random(1))
        with trio.fail_after(GUARD_S):
            nursery.start_soon(supervisor.run)
            await fake.wait_subscribed(1)
            await fake.wait_for(lambda: len(fake.private) == 1)
            first = sorted(fake.subscriptions[0])
            dropped_at = trio.current_time()
            await fake.drop()
            await fake.wait_for(lambda: len(fake.private) == 2 and len(fake.subscriptions) == 2)
            await fake.wait_subscribed(2)
            await fake.wait_for(lambda: sorted(fake.subscriptions[1]) == first)
            await fake.ticker(SYM, "101")
            while True:
                ev = await rx.receive()
                if isinstance(ev, Received) and isinstance(ev.event, Ticker):
                    break
            assert ev.event.last_price == Decimal("101")
            # first retry is immediate or within the backoff bound
            assert trio.current_time() - dropped_at < 0.2 + 1.0
            # the private subscription was re-signed with a fresh timestamp
            assert fake.private[0]["signature"][2] != fake.private[1]["signature"][2]
            assert supervisor.statistics().actor("feed").restarts == 1
        supervisor.shutdown("test done")


async def test_exchange_that_never_comes_back_exhausts_the_policy() -> None:
    """A server that never completes the handshake: each attempt times out, then the intensity cap stops all."""
    tx, _rx = trio.open_memory_channel[FeedEvent](100)
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # the kernel accepts connections, but nobody ever answers the handshake
        port = sock.getsockname()[1]
        policy = RestartPolicy(max_restarts=2, within_s=60.0, backoff=Backoff(initial_s=0.05, max_s=0.05))
        spec = ActorSpec(name="feed", policy=policy, run=functools.partial(
            run_feed, cfg(connect_timeout_s=0.2), ws_url=f"ws://127.0.0.1:{port}", rest="http://127.0.0.1:1",
            symbols=[SYM], out=tx, now_ms=wall_ms))
        start = trio.current_time()
        with trio.fail_after(GUARD_S), pytest.raises(RestartIntensityExceeded):
            await Supervisor([spec], rng=random.Random(1)).run()
        assert trio.current_time() - start >= 3 * 0.2


async def test_connection_refused_is_feed_disconnected() -> None:
    """A refused connection is a FeedDisconnected (restartable), not an OSError."""
    tx, _rx = trio.open_memory_channel[FeedEvent](100)
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with trio.fail_after(GUARD_S), pytest.raises(FeedDisconnected, match="cannot connect"):
            await run_feed(cfg(), ws_url=f"ws://127.0.0.1:{port}", rest="http://127.0.0.1:1", symbols=[SYM],
                           out=tx, now_ms=wall_ms)


async def test_depth_gap_resyncs_and_book_matches_exchange(nursery: trio.Nursery) -> None:
    """Deltas apply continuously; a gap drops the book, a new snapshot is fetched, and the book matches."""
    fake = FakeExchange()
    await nursery.start(fake.serve)
    tx, rx = trio.open_memory_channel[FeedEvent](1000)
    c = cfg(auto_subscribe_ticker=False, subscribe_mark_price=False, kline_intervals=(), subscribe_trades=False)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S):
            await nursery.start(functools.partial(run_feed, c, ws_url=fake.url, rest=client, symbols=[SYM],
                                                  out=tx, now_ms=wall_ms))
            snap = await next_of(rx, BookState)
            assert isinstance(snap, BookState)
            assert snap.update_id == 1000
            assert snap.bids[0] == (Decimal("99"), Decimal("1"))
            await fake.depth(SYM, [("99.5", "4")], [])
            state = await next_of(rx, BookState)
            assert isinstance(state, BookState)
            assert (state.update_id, state.bids[0]) == (1001, (Decimal("99.5"), Decimal("4")))
            await fake.depth(SYM, [("99.5", "0")], [("100.5", "2")], skip=3)  # ids 1002-1004 never sent
            invalid = await next_of(rx, BookInvalid)
            assert isinstance(invalid, BookInvalid)
            assert invalid.gap
            resynced = await next_of(rx, BookState)
            assert isinstance(resynced, BookState)
            assert resynced.update_id == fake.update_id
            assert resynced.bids == tuple(sorted(fake.bids.items(), reverse=True))
            assert resynced.asks == tuple(sorted(fake.asks.items()))
            assert fake.rest_calls.count("/api/v1/depth") == 2
        nursery.cancel_scope.cancel(reason="test done")


async def test_crossed_book_resyncs(nursery: trio.Nursery) -> None:
    """A delta that crosses the book discards it and triggers a new snapshot."""
    fake = FakeExchange()
    await nursery.start(fake.serve)
    tx, rx = trio.open_memory_channel[FeedEvent](1000)
    c = cfg(auto_subscribe_ticker=False, subscribe_mark_price=False, kline_intervals=(), subscribe_trades=False)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S):
            await nursery.start(functools.partial(run_feed, c, ws_url=fake.url, rest=client, symbols=[SYM],
                                                  out=tx, now_ms=wall_ms))
            await next_of(rx, BookState)
            await fake.depth(SYM, [("101.5", "1")], [])  # bid above the best ask
            invalid = await next_of(rx, BookInvalid)
            assert isinstance(invalid, BookInvalid)
            assert "crossed" in invalid.reason
            assert not invalid.gap
        nursery.cancel_scope.cancel(reason="test done")


async def test_malformed_frames_are_counted_not_fatal(nursery: trio.Nursery) -> None:
    """Garbage and bad fields become DecodeFailed with a bounded reason; the next good frame still flows."""
    fake = FakeExchange()
    await nursery.start(fake.serve)
    tx, rx = trio.open_memory_channel[FeedEvent](1000)
    c = cfg(auto_subscribe_depth=False)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S):
            await nursery.start(functools.partial(run_feed, c, ws_url=fake.url, rest=client, symbols=[SYM],
                                                  out=tx, now_ms=wall_ms))
            await fake.send_raw("{not json")
            await fake.send(f"ticker.{SYM}", {"e": "ticker", "E": 1, "s": SYM, "c": 12})
            failures = [await next_of(rx, DecodeFailed), await next_of(rx, DecodeFailed)]
            assert [(f.stream, f.reason) for f in failures if isinstance(f, DecodeFailed)][0] == (
                "unknown", "invalid json")
            second = failures[1]
            assert isinstance(second, DecodeFailed)
            assert second.stream == "ticker"
            assert second.reason.startswith("bad field")
            await fake.ticker(SYM, "99")
            ev = await next_of(rx, Received)
            assert isinstance(ev, Received)
        nursery.cancel_scope.cancel(reason="test done")


async def test_error_frame_ends_the_attempt(nursery: trio.Nursery) -> None:
    """An exchange error frame (e.g. 4006 invalid stream) is a FeedDisconnected naming the code."""
    fake = FakeExchange()
    await nursery.start(fake.serve)
    tx, _rx = trio.open_memory_channel[FeedEvent](1000)
    async def send_error() -> None:
        await fake.wait_subscribed(1)
        await fake.send_raw('{"id":null,"error":{"code":4006,"message":"Invalid stream"}}')

    nursery.start_soon(send_error)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S), pytest.raises(FeedDisconnected, match="4006"):
            await run_feed(cfg(auto_subscribe_depth=False), ws_url=fake.url, rest=client, symbols=[SYM], out=tx,
                           now_ms=wall_ms)
