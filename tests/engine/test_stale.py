"""A stalled feed makes the price Stale, and a Stale price blocks entries until the data returns."""

from __future__ import annotations

from pathlib import Path

import trio

from engine.app import EngineProbe
from engine.market.prices import Price, Stale
from engine.market.view import MarketView
from tests.engine.harness import engine_config, running_engine, wait_for

SYMBOL = "BTC_USDC"


def _sim_orders(probe: EngineProbe) -> int:
    assert probe.sim is not None
    assert probe.account_key is not None
    return len(probe.sim.core.order_history(probe.account_key, {"limit": 1000}))


def _stale(view: MarketView) -> bool:
    return bool(view.markets) and isinstance(view.market(SYMBOL).price, Stale)


def _fresh_ws(view: MarketView) -> bool:
    if not view.markets:
        return False
    price = view.market(SYMBOL).price
    return isinstance(price, Price) and price.source == "ws" and not price.cached


async def test_stalled_streams_block_entries_until_data_returns(tmp_path: Path) -> None:
    """Every stream stalled from the start: the view is Stale, the strategy blocks PRICE_STALE and nothing is
    sent; once the streams resume the price is fresh again and the ladder's first entry goes out."""
    # Short freshness limits so the replay's REST answers and the first book snapshot expire at once.
    cfg = engine_config(tmp_path, cache={"ws_fresh_s": 0.3, "cache_max_age_s": 0.5, "rest_max_age_s": 0.05,
                                         "book_fresh_s": 0.3, "rest_poll_interval_s": 5.0},
                        feed={"ticker_stall_s": 1.0, "mark_price_stall_s": 1.0})

    def stall_everything(probe: EngineProbe) -> None:
        assert probe.sim is not None
        probe.sim.faults.stall()

    with trio.fail_after(60):
        async with running_engine(cfg, observe=stall_everything) as probe:
            assert probe.sim is not None
            await wait_for(probe.market, _stale)
            status = await wait_for(probe.strategy, lambda s: "PRICE_STALE" in s.blocks)
            stalled_orders = _sim_orders(probe)
            frames_stalled = probe.sim.faults.statistics().frames_stalled
            probe.sim.faults.resume()
            fresh = await wait_for(probe.market, _fresh_ws)
            entered = await wait_for(probe.strategy, lambda s: s.entries_total >= 1)
            orders_after = _sim_orders(probe)
    assert status.entries_total == 0
    assert stalled_orders == 0
    assert frames_stalled > 0
    assert isinstance(fresh.market(SYMBOL).price, Price)
    assert "PRICE_STALE" not in entered.blocks or entered.entries_total >= 1
    assert orders_after >= 1
