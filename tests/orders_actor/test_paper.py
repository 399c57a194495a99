"""The paper-fill model (pure) and the PaperBroker driven by the orders actor on virtual time."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.brokers import PaperBroker
from actors.orders import run_orders
from engine.backpack import MarketFilters
from engine.config import OrdersConfig
from engine.events import AccountEvent, AccountSnapshot, FillNotice, OrderCommand
from engine.market.prices import Price, Stale
from engine.market.quality import QualityStats
from engine.market.view import BookSummary, MarketState, MarketView
from engine.paper import book_levels, fill_ioc
from engine.runtime import LatestValue
from engine.store.journal import Journal
from tests.orders_actor.conftest import SPOT, intent, place

STEP = Decimal("0.00001")
prices = st.integers(min_value=1_000, max_value=200_000).map(lambda n: Decimal(n) / 10)
sizes = st.integers(min_value=0, max_value=500_000).map(lambda n: Decimal(n) * STEP)


@st.composite
def books(draw: st.DrawFn) -> tuple[bool, list[tuple[Decimal, Decimal]]]:
    buy = draw(st.booleans())
    level_prices = sorted(set(draw(st.lists(prices, min_size=0, max_size=8))), reverse=not buy)
    return buy, [(p, draw(sizes)) for p in level_prices]


@settings(max_examples=200, deadline=None)
@given(book=books(), limit=prices, qty=st.integers(min_value=1, max_value=1_000_000).map(lambda n: n * STEP),
       fee=st.sampled_from([Decimal(0), Decimal("0.0005"), Decimal("0.001")]))
def test_ioc_never_crosses_its_limit_nor_the_book(book: tuple[bool, list[tuple[Decimal, Decimal]]],
                                                  limit: Decimal, qty: Decimal, fee: Decimal) -> None:
    """Fills respect the limit price and each level's size, sum to at most qty, pay the fee, and never rest."""
    buy, levels = book
    result = fill_ioc(buy=buy, qty=qty, limit_price=limit, levels=levels, step=STEP, taker_fee=fee,
                      base_asset="BTC", quote_asset="USDC")
    assert result.filled_qty <= qty
    assert result.filled_qty == sum((f.qty for f in result.fills), Decimal(0))
    assert result.expired == (result.filled_qty < qty)  # the remainder expires; nothing rests
    available = dict(levels)
    for f in result.fills:
        assert (f.price <= limit) if buy else (f.price >= limit)
        assert 0 < f.qty <= available[f.price]
        assert f.qty % STEP == 0
        expected_fee = f.qty * fee if buy else f.qty * f.price * fee
        assert f.fee == expected_fee
        assert f.fee_asset == ("BTC" if buy else "USDC")
    reachable = sum((s for p, s in levels if (p <= limit if buy else p >= limit)), Decimal(0))
    assert result.filled_qty == min(qty, sum(((s // STEP) * STEP for p, s in levels
                                              if (p <= limit if buy else p >= limit)), Decimal(0)))
    assert result.filled_qty <= reachable


def test_book_levels_price_the_depth_band_at_its_far_edge() -> None:
    """A book summary becomes the top level at its price plus the rest of the band at the band's edge."""
    levels = book_levels(buy=True, best_bid=Decimal(99), best_ask=Decimal(101), bid_size=Decimal(1),
                         ask_size=Decimal(2), bid_depth=Decimal(5), ask_depth=Decimal(7), depth_bps=Decimal(200))
    assert levels == ((Decimal(101), Decimal(2)), (Decimal(102), Decimal(5)))
    inside = book_levels(buy=True, best_bid=Decimal(99), best_ask=Decimal(101), bid_size=Decimal(1),
                         ask_size=Decimal(2), bid_depth=Decimal(5), ask_depth=Decimal(7), depth_bps=Decimal(50))
    assert inside == ((Decimal(101), Decimal(2)), (Decimal(101), Decimal(5)))  # never better than the top
    sell = book_levels(buy=False, best_bid=Decimal(99), best_ask=Decimal(101), bid_size=Decimal(1),
                       ask_size=Decimal(2), bid_depth=Decimal(5), ask_depth=Decimal(7), depth_bps=Decimal(200))
    assert sell == ((Decimal(99), Decimal(1)), (Decimal("98.00"), Decimal(4)))


FILTERS = MarketFilters(tick_size=Decimal("0.1"), min_price=None, max_price=None, step_size=STEP,
                        min_quantity=Decimal("0.00001"), max_quantity=None)


def view(*, ask: Decimal, ask_size: Decimal, fresh: bool = True) -> MarketView:
    bid = ask - 1
    book = BookSummary(best_bid=bid, best_ask=ask, bid_size=Decimal(1), ask_size=ask_size, spread_bps=Decimal(1),
                       imbalance=None, bid_depth=Decimal(1), ask_depth=ask_size, depth_bps=Decimal(10), update_id=1,
                       source="ws", age_s=0.0, fresh=fresh)
    mid = Price(value=(ask + bid) / 2, source="ws", age_s=0.0, cached=False, exchange_ms=0)
    state = MarketState(symbol=SPOT, last=Stale(reason="none", age_s=None), mid=mid,
                        mark=Stale(reason="none", age_s=None), book=book, funding=None, candles=(), clusters=(),
                        burst=None)
    return MarketView(version=1, as_of_ms=0, as_of_s=0.0, markets=(state,),
                      quality=QualityStats(as_of_s=0.0, uptime_s=0.0, connected=True, reconnects=0, streams=()))


async def test_paper_actor_fills_partially_and_keeps_balances_across_restarts(tmp_path: Path,
                                                                               autojump_clock: object) -> None:
    """Paper IOC: fills what the book offers within the limit, expires the rest; balances survive a restart."""
    market: LatestValue[MarketView] = LatestValue()
    market.set(view(ask=Decimal(50000), ask_size=Decimal("0.03")))

    def now_ms() -> int:
        return 1_700_000_000_000 + int(trio.current_time() * 1000)

    journal = Journal.open(tmp_path / "paper.sqlite", now_ms=now_ms)
    snapshots: list[AccountSnapshot] = []
    for run in range(2):
        broker = PaperBroker(market=market, journal=journal, filters=FILTERS, taker_fee=Decimal("0.001"),
                             initial_quote=Decimal(10000) if run == 0 else Decimal(1), now_ms=now_ms)
        cmd_tx, cmd_rx = trio.open_memory_channel[OrderCommand](4)
        _ev_tx, ev_rx = trio.open_memory_channel[AccountEvent](4)
        fill_tx, fill_rx = trio.open_memory_channel[FillNotice](4)
        account: LatestValue[AccountSnapshot] = LatestValue()
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(lambda task_status: run_orders(  # noqa: B023
                    OrdersConfig(), commands=cmd_rx, account_events=ev_rx, fills_out=fill_tx,  # noqa: B023
                    account=account, broker=broker, journal=journal, symbol=SPOT,  # noqa: B023
                    market_type="spot", now_ms=now_ms, market=market, task_status=task_status))
                if run == 0:
                    await cmd_tx.send(place(intent(SPOT, Decimal("0.05"), Decimal("50100"))))
                    notice = await fill_rx.receive()
                    assert (notice.report.filled_qty, notice.terminal_status) == (Decimal("0.03"), "EXPIRED")
                    assert notice.report.avg_price == Decimal(50000)
                await account.wait_changed(0)
                while not account.get_nowait()[1].reconciled:
                    await account.wait_changed(account.version)
                snapshots.append(account.get_nowait()[1])
                nursery.cancel_scope.cancel(reason="test finished")
    journal.close()
    first, second = snapshots
    # 0.03 BTC bought, fee 0.1 % in BTC; quote paid 1500 USDC.
    assert first.position_qty == second.position_qty == Decimal("0.03") - Decimal("0.00003")
    assert first.quote_available == second.quote_available == Decimal(10000) - Decimal(1500)


def test_paper_model_is_pure() -> None:
    """engine.paper imports no I/O library (checked in a fresh interpreter)."""
    import json
    import subprocess
    import sys

    code = ("import json, sys; import engine.paper; "
            "print(json.dumps(sorted(m for m in ('trio', 'httpx', 'socket', 'asyncio') if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert json.loads(result.stdout) == []
