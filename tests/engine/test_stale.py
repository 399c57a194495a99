"""A stalled feed makes the price Stale, and a Stale price blocks entries until the data returns."""

from __future__ import annotations

from pathlib import Path

import trio

from engine.app import EngineProbe
from engine.market.prices import Price, Stale
from engine.market.view import MarketView
from tests.engine.harness import engine_config, poll_until, running_engine, wait_for

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
    cfg = engine_config(tmp_path, cache={"ws_fresh_s": 0.3, "cache_max_age_s": 0.5, "rest_max_age_s": 0.000001,
                                         "book_fresh_s": 0.05, "rest_poll_interval_s": 5.0},
                        feed={"ticker_stall_s": 1.0, "mark_price_stall_s": 1.0})

    def stall_everything(probe: EngineProbe) -> None:
        assert probe.sim is not None
        probe.sim.faults.stall()

    with trio.fail_after(60):
        async with running_engine(cfg, observe=stall_everything) as probe:
            assert probe.sim is not None
            sim = probe.sim
            # The feed is subscribed and the simulator is withholding its frames...
            frames_stalled = await poll_until(lambda: sim.faults.statistics().frames_stalled or None, probe.market)
            # ...and a view published after that says Stale.
            stalled_at = probe.market.version
            await wait_for(probe.market, lambda v: v.version > stalled_at and _stale(v))
            orders_when_stale = _sim_orders(probe)
            status = await wait_for(probe.strategy, lambda s: "PRICE_STALE" in s.blocks)
            # The feed gives up on the silent socket and reconnects; the orders actor reconciles again and the
            # strategy decides on the reconciled account: all of it while the view stays Stale.
            await wait_for(probe.account, lambda a: not a.reconciled)
            after = await wait_for(probe.account, lambda a: a.reconciled)
            orders_before_resume = _sim_orders(probe)
            sim.faults.resume()
            fresh = await wait_for(probe.market, _fresh_ws)
            if orders_when_stale == 0:  # nothing bought in the first moment (REST snapshot, before Stale)
                await wait_for(probe.strategy, lambda s: s.entries_total >= 1)
            orders_after = _sim_orders(probe)
    assert frames_stalled > 0
    assert "PRICE_STALE" in status.blocks
    assert after.reconciled
    assert orders_before_resume == orders_when_stale  # nothing sent while the price was Stale
    assert isinstance(fresh.market(SYMBOL).price, Price)
    assert orders_after >= 1  # the data returned, and with it the ladder's entry
