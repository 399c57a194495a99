"""Self-trade prevention, determinism in the seed, and the pure-core import rule."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest

from engine.sim.core import SimExchange

from .conftest import KEY_A, KEY_B, make_exchange

PERP = "BTC_USDC_PERP"
CORE_FILES = ("core.py", "matching.py", "accounts.py", "replay.py", "marketdata.py", "markets.py")


def _inside_ask(ex: SimExchange) -> str:
    """A price inside the spread, just above the path price (a resting ask there is the best ask)."""
    book = ex.depth(PERP, 5)
    bid, ask = Decimal(book["bids"][-1][0]), Decimal(book["asks"][0][0])
    assert ask - bid >= Decimal("0.2")
    return str(bid + Decimal("0.1") if ask - bid > Decimal("0.2") else ask - Decimal("0.1"))


@pytest.mark.parametrize(("stp", "taker_status", "maker_status"), [
    ("RejectTaker", "Expired", "New"),
    ("RejectMaker", "Filled", "Expired"),
    ("RejectBoth", "Expired", "Expired"),
])
def test_self_trade_prevention_between_own_orders(ex: SimExchange, stp: str, taker_status: str,
                                                  maker_status: str) -> None:
    """A taker meeting its own resting order follows its STP mode; other accounts' orders trade normally."""
    now = ex.start_time_us() + 1000
    maker, _ = ex.execute_order(KEY_A, {"symbol": PERP, "side": "Ask", "orderType": "Limit", "quantity": "0.01",
                                        "price": _inside_ask(ex), "postOnly": True}, now)
    taker, _ = ex.execute_order(KEY_A, {"symbol": PERP, "side": "Bid", "orderType": "Market", "quantity": "0.02",
                                        "selfTradePrevention": stp}, now)
    assert taker["status"] == taker_status
    hist = {o["id"]: o for o in ex.order_history(KEY_A, {})}
    assert hist[maker["id"]]["status"] == maker_status
    if maker_status == "Expired":
        assert hist[maker["id"]]["expiryReason"] == "SelfTradePrevention"
    assert all(f["orderId"] != maker["id"] for f in ex.fill_history(KEY_A, {}))


def test_another_accounts_resting_order_is_a_counterparty(ex: SimExchange) -> None:
    """Account B's market buy fills against account A's inside-spread ask, A as maker, B as taker."""
    now = ex.start_time_us() + 1000
    price = _inside_ask(ex)
    maker, _ = ex.execute_order(KEY_A, {"symbol": PERP, "side": "Ask", "orderType": "Limit", "quantity": "0.01",
                                        "price": price}, now)
    _, emits = ex.execute_order(KEY_B, {"symbol": PERP, "side": "Bid", "orderType": "Market", "quantity": "0.01"},
                                now)
    a_fill = [e.data for e in emits if e.account == KEY_A and e.data.get("e") == "orderFill"]
    b_fill = [e.data for e in emits if e.account == KEY_B and e.data.get("e") == "orderFill"]
    assert a_fill[0]["m"] is True
    assert b_fill[0]["m"] is False
    assert a_fill[0]["t"] == b_fill[0]["t"]
    assert a_fill[0]["L"] == b_fill[0]["L"] == price
    assert Decimal(ex.positions(KEY_A)[0]["netQuantity"]) == Decimal("-0.01")
    assert Decimal(ex.positions(KEY_B)[0]["netQuantity"]) == Decimal("0.01")


def test_same_seed_same_market_other_seed_other_book() -> None:
    """Two exchanges with one seed emit identical streams; another seed gives another book."""
    a, b, c = make_exchange(seed=11), make_exchange(seed=11), make_exchange(seed=12)
    t = a.start_time_us() + 90_000_000
    assert [(e.stream, e.data) for e in a.step(t)] == [(e.stream, e.data) for e in b.step(t)]
    c.step(t)
    assert a.depth(PERP, 20)["bids"] != c.depth(PERP, 20)["bids"]
    assert a.ticker(PERP) == c.ticker(PERP)


@pytest.mark.parametrize("name", CORE_FILES)
def test_core_modules_do_no_io_and_read_no_clock(name: str) -> None:
    """The core imports neither trio, httpx, sockets nor time, and never calls now()/today()."""
    tree = ast.parse((Path(__file__).parents[3] / "engine" / "sim" / name).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not any(n.split(".")[0] in {"trio", "httpx", "socket", "time", "asyncio"} for n in names)
        if isinstance(node, ast.Attribute):
            assert node.attr not in {"now", "today", "utcnow", "time_ns", "monotonic"}
