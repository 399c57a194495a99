"""Fast-forward: one big jump of market time gives the same account outcome as many small steps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sim.core import SimExchange, iso_to_ms

from .conftest import KEY_A, make_exchange

HOUR_US = 3_600_000_000


def _setup(offsets: list[int], perp_qty: int) -> tuple[SimExchange, int]:
    ex = make_exchange(seed=3, start_ms=iso_to_ms("2021-05-19T06:00:00"))
    now = ex.start_time_us() + 1000
    mid = Decimal(ex.depth("BTC_USDC", 5)["asks"][0][0])
    for i, off in enumerate(offsets):
        sym = "BTC_USDC" if i % 2 == 0 else "BTC_USDC_PERP"
        side = "Bid" if off < 0 else "Ask"
        if side == "Ask" and sym == "BTC_USDC":
            continue  # no BTC to sell on spot
        price = (mid + Decimal(off) * 10).quantize(Decimal("0.1"))
        ex.execute_order(KEY_A, {"symbol": sym, "side": side, "orderType": "Limit", "quantity": "0.01",
                                 "price": str(price)}, now)
    if perp_qty:
        ex.execute_order(KEY_A, {"symbol": "BTC_USDC_PERP", "side": "Bid", "orderType": "Market",
                                 "quantity": str(Decimal(perp_qty) / 100)}, now)
    return ex, now


def _outcome(ex: SimExchange) -> dict[str, Any]:
    fills = [(f["orderId"], f["price"], f["quantity"], f["timestamp"]) for f in ex.fill_history(KEY_A, {"limit": 1000})]
    return {"capital": ex.capital(KEY_A), "positions": ex.positions(KEY_A), "fills": fills,
            "funding": ex.funding_history(KEY_A, {"limit": 1000}), "open": ex.open_orders(KEY_A, {})}


@settings(max_examples=5, deadline=None)
@given(st.lists(st.integers(-400, 400), min_size=1, max_size=6), st.integers(0, 20), st.integers(1, 3))
def test_big_jump_equals_small_steps(offsets: list[int], perp_qty: int, hours: int) -> None:
    """Resting fills, funding, liquidations and balances after N hours do not depend on the step size."""
    fine, now = _setup(offsets, perp_qty)
    coarse, _ = _setup(offsets, perp_qty)
    end = now + hours * HOUR_US
    t = now
    while t < end:
        t = min(end, t + 25_000_000)
        fine.step(t)
    coarse.step(end)
    assert _outcome(fine) == _outcome(coarse)
