"""The cache's hot paths: fast-path folding equals the generic fold, and a burst becomes few views that end on
the newest state."""

from __future__ import annotations

import functools
from decimal import Decimal

import httpx
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.cache import _Cache, run_cache
from engine.backpack.events import BookTicker, Ticker, Trade
from engine.market.config import CacheConfig
from engine.market.feed_events import FeedEvent, Received, StreamStalled
from engine.market.prices import PRICE_KINDS, Price
from engine.market.view import MarketView
from engine.runtime import open_latest_channel
from tests.market.fake_exchange import FakeExchange

SYM = "BTC_USDC"
OTHER = "SOL_USDC"  # not tracked by the cache under test
T0_US = 1_788_000_000_000_000
GUARD_S = 60.0


def event(kind: str, symbol: str, price: int, at_us: int, recv_s: float) -> Received:
    p = Decimal(price)
    ev: Trade | Ticker | BookTicker
    if kind == "trade":
        ev = Trade(stream=f"trade.{symbol}", symbol=symbol, event_time_us=at_us, engine_time_us=at_us, trade_id=1,
                   price=p, quantity=Decimal(1), buyer_order_id="1", seller_order_id="2", buyer_is_maker=False)
    elif kind == "ticker":
        ev = Ticker(stream=f"ticker.{symbol}", symbol=symbol, event_time_us=at_us, first_price=p, last_price=p,
                    high=p, low=p, base_volume=Decimal(1), quote_volume=p, trades=1)
    else:
        # Even prices make a crossed book (bid above ask), which must not produce a mid.
        bid, ask = (p + 1, p) if price % 2 == 0 else (p, p + 1)
        ev = BookTicker(stream=f"bookTicker.{symbol}", symbol=symbol, event_time_us=at_us, engine_time_us=at_us,
                        update_id=1, ask_price=ask, ask_size=Decimal(1), bid_price=bid, bid_size=Decimal(1))
    return Received(event=ev, recv_s=recv_s, recv_ms=at_us // 1000 + 3)


def new_cache() -> _Cache:
    view_tx, _ = open_latest_channel[MarketView]()
    return _Cache(CacheConfig(), [SYM], ("1m",), httpx.AsyncClient(), view_tx, lambda: T0_US // 1000)


steps = st.lists(st.tuples(st.sampled_from(["trade", "ticker", "bookTicker"]), st.sampled_from([SYM, OTHER]),
                           st.integers(1, 10_000), st.integers(-5_000_000, 5_000_000), st.booleans()),
                 max_size=30)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_fast_path_folds_exactly_like_the_generic_path(seq: list[tuple[str, str, int, int, bool]]) -> None:
    """Prices, exchange time and quality counters are identical whether hot events take the fast path or not."""
    fast, generic = new_cache(), new_cache()
    for i, (kind, symbol, price, offset_us, stall_first) in enumerate(seq):
        recv_s = float(i)
        ev = event(kind, symbol, price, T0_US + offset_us, recv_s)
        if stall_first:
            stalled = StreamStalled(stream=ev.event.stream, silent_s=1.0, recv_s=recv_s)
            fast.fold(stalled)
            generic.fold(stalled)
        fast.fold(ev)
        generic.fold_received(ev)
    now = float(len(seq))
    for kind in PRICE_KINDS:
        assert fast.board.quote(SYM, kind, now) == generic.board.quote(SYM, kind, now)
    assert fast.market_ms == generic.market_ms
    assert fast.quality.statistics(now) == generic.quality.statistics(now)


async def test_a_burst_becomes_few_views_ending_on_the_newest(autojump_clock: trio.testing.MockClock,
                                                              nursery: trio.Nursery) -> None:
    """Five hundred queued trades are folded into a handful of views, and the last one shows the last trade."""
    fake = FakeExchange()
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://fake") as client:
        tx, rx = trio.open_memory_channel[FeedEvent](1000)
        view_tx, views = open_latest_channel[MarketView]()
        await nursery.start(functools.partial(
            run_cache, CacheConfig(rest_poll_interval_s=3600.0), inbox=rx, view_out=view_tx, rest=client,
            symbols=[SYM], now_ms=lambda: T0_US // 1000 + int(trio.current_time() * 1000), intervals=()))
        with trio.fail_after(GUARD_S):
            await trio.testing.wait_all_tasks_blocked()
            before = views.statistics().sent
            for i in range(500):
                tx.send_nowait(event("trade", SYM, 1000 + i, T0_US + i, trio.current_time()))
            await trio.testing.wait_all_tasks_blocked()
            view = views.receive_nowait()
        q = view.market(SYM).last
        assert isinstance(q, Price)
        assert q.value == Decimal(1499)
        published = views.statistics().sent - before
        assert 1 <= published <= 5
        nursery.cancel_scope.cancel(reason="test done")
