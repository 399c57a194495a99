"""Cache actor on virtual time: price priority over time, REST fallback engage/disengage, Stale when nothing is
fresh, conflated publication, kline gap repair from REST, book summaries and quality counters."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import trio
import trio.testing

from actors.cache import run_cache
from engine.backpack.events import Kline, Ticker
from engine.market.config import CacheConfig
from engine.market.feed_events import BookInvalid, BookState, FeedEvent, FeedStatus, Received
from engine.market.prices import Price, Stale
from engine.market.view import MarketView
from engine.runtime import open_latest_channel
from engine.runtime.channels import LatestReceiver
from tests.market.fake_exchange import FakeExchange, kline_row

SYM = "BTC_USDC"
T0_MS = 1_788_000_000_000 - 1_788_000_000_000 % 60_000
GUARD_S = 120.0


def wall() -> int:
    return T0_MS + int(trio.current_time() * 1000)


def ticker(price: str, at_ms: int | None = None) -> Received:
    at = wall() if at_ms is None else at_ms
    ev = Ticker(stream=f"ticker.{SYM}", symbol=SYM, event_time_us=at * 1000, first_price=Decimal(price),
                last_price=Decimal(price), high=Decimal(price), low=Decimal(price), base_volume=Decimal(1),
                quote_volume=Decimal(price), trades=1)
    return Received(event=ev, recv_s=trio.current_time(), recv_ms=wall())


def kline(i: int, close: str, *, closed: bool = True) -> Received:
    start = T0_MS + i * 60_000
    c = Decimal(close)
    ev = Kline(stream=f"kline.1m.{SYM}", symbol=SYM, interval="1m", event_time_us=(start + 60_000) * 1000,
               start=datetime.fromtimestamp(start / 1000, UTC), end=datetime.fromtimestamp(start / 1000 + 60, UTC),
               open=c, high=c, low=c, close=c, volume=Decimal(1), trades=1, closed=closed)
    return Received(event=ev, recv_s=trio.current_time(), recv_ms=wall())


async def until(rx: LatestReceiver[MarketView], pred: Callable[[MarketView], bool]) -> MarketView:
    while True:
        view = await rx.receive()
        if pred(view):
            return view


async def start_cache(nursery: trio.Nursery, fake: FakeExchange, client: httpx.AsyncClient, **kw: object
                      ) -> tuple[trio.MemorySendChannel[FeedEvent], LatestReceiver[MarketView]]:
    base: dict[str, object] = {"ws_fresh_s": 3.0, "cache_max_age_s": 10.0, "rest_max_age_s": 5.0,
                               "rest_poll_interval_s": 2.0, "candle_history": 10}
    base.update(kw)
    tx, rx = trio.open_memory_channel[FeedEvent](0)
    view_tx, view_rx = open_latest_channel[MarketView]()
    await nursery.start(functools.partial(run_cache, CacheConfig(**base), inbox=rx, view_out=view_tx,  # type: ignore[arg-type]
                                          rest=client, symbols=[SYM], now_ms=wall, intervals=("1m",)))
    return tx, view_rx


async def test_price_goes_ws_cached_rest_then_back_to_ws(autojump_clock: trio.testing.MockClock,
                                                         nursery: trio.Nursery) -> None:
    """Silence: live ws, then cached ws, then REST (polled once ws is not live), then ws again when it returns."""
    fake = FakeExchange()
    fake.last_price = Decimal("105")
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S):
            tx, views = await start_cache(nursery, fake, client)
            await tx.send(ticker("100"))
            v = await until(views, lambda v: getattr(v.market(SYM).last, "source", None) == "ws")
            q = v.market(SYM).last
            assert isinstance(q, Price)
            assert (q.source, q.value, q.cached) == ("ws", Decimal("100"), False)
            calls = fake.rest_calls.count("/api/v1/ticker")  # one poll may precede the first ws tick
            await trio.sleep(2.9)
            assert fake.rest_calls.count("/api/v1/ticker") == calls  # no polling while the ws price is live
            v = await until(views, lambda v: isinstance(v.market(SYM).last, Price) and v.market(SYM).last.cached)
            assert trio.current_time() > 3.0
            v = await until(views, lambda v: getattr(v.market(SYM).last, "source", None) == "rest")
            q = v.market(SYM).last
            assert isinstance(q, Price)
            assert q.value == Decimal("105")
            assert 10.0 < trio.current_time() < 10.1  # the cached ws value expires exactly at its limit
            assert fake.rest_calls.count("/api/v1/ticker") >= 3  # polled from 3 s on, every 2 s
            await tx.send(ticker("101"))
            v = await until(views, lambda v: getattr(v.market(SYM).last, "source", None) == "ws")
            calls = fake.rest_calls.count("/api/v1/ticker")
            for _ in range(6):
                await trio.sleep(1.0)  # keep the stream alive at its 1 s cadence (virtual time)
                await tx.send(ticker("101"))
            assert fake.rest_calls.count("/api/v1/ticker") == calls  # fallback stopped while ws is live
        nursery.cancel_scope.cancel(reason="test done")


async def test_stream_that_never_returns_ends_in_stale(autojump_clock: trio.testing.MockClock,
                                                       nursery: trio.Nursery) -> None:
    """With the WebSocket silent and REST failing, the quote becomes Stale (no number) at the cache limit."""
    fake = FakeExchange()
    fake.rest_status = 503
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S):
            tx, views = await start_cache(nursery, fake, client)
            v = await views.receive()
            assert isinstance(v.market(SYM).last, Stale)
            assert v.market(SYM).last.age_s is None
            await tx.send(ticker("100"))
            await until(views, lambda v: isinstance(v.market(SYM).last, Price))
            v = await until(views, lambda v: isinstance(v.market(SYM).last, Stale))
            assert 10.0 < trio.current_time() < 10.1
            stale = v.market(SYM).last
            assert isinstance(stale, Stale)
            assert stale.age_s is not None
            assert v.stale
            failures = v.quality.stream("rest.ticker")
            assert failures is not None
            assert dict(failures.decode_errors)["ServerUnavailable"] >= 1
        nursery.cancel_scope.cancel(reason="test done")


async def test_slow_consumer_sees_latest_view_not_a_queue(autojump_clock: trio.testing.MockClock,
                                                         nursery: trio.Nursery) -> None:
    """Fifty ticks without reading leave one pending view: the newest."""
    fake = FakeExchange()
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S):
            tx, views = await start_cache(nursery, fake, client)
            for i in range(50):
                await tx.send(ticker(str(100 + i), at_ms=T0_MS + i))
            await trio.testing.wait_all_tasks_blocked()
            v = views.receive_nowait()
            q = v.market(SYM).last
            assert isinstance(q, Price)
            assert q.value == Decimal("149")
            # Every view but the one taken was overwritten (the cache may fold several ticks into one view).
            stats = views.statistics()
            assert not stats.pending
            assert stats.received == 1
            assert stats.sent >= 2
            assert stats.overwritten == stats.sent - 1
        nursery.cancel_scope.cancel(reason="test done")


async def test_kline_gap_is_backfilled_from_rest(autojump_clock: trio.testing.MockClock,
                                                nursery: trio.Nursery) -> None:
    """A missing closed bar is requested from REST (within the window) and the series becomes contiguous."""
    fake = FakeExchange()
    fake.klines = [kline_row(T0_MS + i * 60_000, 60_000, str(200 + i)) for i in range(-20, 20)]
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S):
            tx, views = await start_cache(nursery, fake, client)
            await tx.send(FeedStatus(state="connected", streams=(), reason="test", recv_s=trio.current_time()))
            for i in (0, 1, 3, 4):  # bar 2 never arrives on the stream
                await tx.send(kline(i, str(100 + i)))
            await tx.send(ticker("100", at_ms=T0_MS + 5 * 60_000 + 30_000))
            v = await until(views, lambda v: T0_MS + 2 * 60_000 in {
                b.start_ms for b in v.market(SYM).closed_candles("1m")})
            bars = v.market(SYM).closed_candles("1m")
            starts = [b.start_ms for b in bars]
            assert starts == [T0_MS + i * 60_000 for i in range(-5, 5)]
            closes = {b.start_ms: b.close for b in bars}
            assert closes[T0_MS + 2 * 60_000] == Decimal("202")  # repaired from REST
            assert closes[T0_MS + 3 * 60_000] == Decimal("103")  # stream bars kept
            assert fake.rest_calls.count("/api/v1/klines") >= 1
        nursery.cancel_scope.cancel(reason="test done")


async def test_book_state_and_resync_reach_the_view(autojump_clock: trio.testing.MockClock,
                                                   nursery: trio.Nursery) -> None:
    """A local-book state gives a fresh summary and ws mid; an invalidation clears it and is counted."""
    fake = FakeExchange()
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        with trio.fail_after(GUARD_S):
            tx, views = await start_cache(nursery, fake, client)
            await tx.send(BookState(symbol=SYM, update_id=7, bids=((Decimal(99), Decimal(2)),),
                                    asks=((Decimal(101), Decimal(1)),), bid_depth=Decimal(2), ask_depth=Decimal(1),
                                    depth_bps=Decimal(10), engine_time_us=None, recv_s=trio.current_time()))
            v = await until(views, lambda v: v.market(SYM).book is not None)
            book = v.market(SYM).book
            assert book is not None
            assert (book.best_bid, book.best_ask, book.source, book.fresh) == (Decimal(99), Decimal(101), "ws", True)
            assert book.spread_bps == Decimal(200)
            assert book.imbalance == Decimal(1) / Decimal(3)
            mid = v.market(SYM).mid
            assert isinstance(mid, Price)
            assert mid.value == Decimal(100)
            await tx.send(BookInvalid(symbol=SYM, reason="gap", gap=True, recv_s=trio.current_time()))
            v = await until(views, lambda v: v.market(SYM).book is None)
            depth = v.quality.stream(f"depth.{SYM}")
            assert depth is not None
            assert (depth.gaps, depth.resyncs) == (1, 1)
        nursery.cancel_scope.cancel(reason="test done")
