"""Wire compatibility: the project's own frame decoder and ccxt 4.5.90's Backpack parsers accept the core's output."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from engine.backpack import decode_frame
from engine.sim.core import Emit, SimExchange

from .conftest import KEY_A, make_exchange

PERP = "BTC_USDC_PERP"


def _busy_exchange() -> tuple[SimExchange, list[Emit]]:
    """Two hours of the crash with spot and perp orders of every kind, collecting everything emitted."""
    from engine.sim.core import iso_to_ms

    ex = make_exchange(seed=9, start_ms=iso_to_ms("2021-05-19T12:30:00"))
    now = ex.start_time_us()
    emits: list[Emit] = []
    mid = Decimal(ex.depth("BTC_USDC", 5)["asks"][0][0])
    bodies: list[dict[str, Any]] = [
        {"symbol": "BTC_USDC", "side": "Bid", "orderType": "Market", "quantity": "0.01", "clientId": 1},
        {"symbol": "BTC_USDC", "side": "Ask", "orderType": "Limit", "quantity": "0.005",
         "price": str((mid + 200).quantize(Decimal("0.1")))},
        {"symbol": "BTC_USDC", "side": "Bid", "orderType": "Limit", "quantity": "0.01",
         "price": str((mid - 300).quantize(Decimal("0.1"))), "postOnly": True},
        {"symbol": PERP, "side": "Bid", "orderType": "Market", "quantity": "0.05"},
        {"symbol": PERP, "side": "Ask", "orderType": "Limit", "quantity": "0.02",
         "price": str((mid + 100).quantize(Decimal("0.1"))), "timeInForce": "IOC"},
        {"symbol": PERP, "side": "Bid", "orderType": "Market", "quoteQuantity": "500"},
    ]
    for body in bodies:
        now += 1_000_000
        _, em = ex.execute_order(KEY_A, body, now)
        emits += em
    for _ in range(120):
        now += 60_000_000
        emits += ex.step(now)
    emits += ex.position_snapshot_emits(KEY_A)
    return ex, emits


@pytest.fixture(scope="module")
def busy() -> tuple[SimExchange, list[Emit]]:
    return _busy_exchange()


def test_decode_frame_accepts_everything_step_emits(busy: tuple[SimExchange, list[Emit]]) -> None:
    """engine.backpack.decode_frame decodes every emitted payload, wrapped as the server sends it."""
    _, emits = busy
    kinds = set()
    for e in emits:
        stream = e.stream
        event = decode_frame(json.dumps({"stream": stream, "data": e.data}))
        kinds.add(type(event).__name__)
        if stream.startswith("account.") and stream != "account.balanceUpdate":
            decode_frame(json.dumps({"stream": f"{stream}.{e.data['s']}", "data": e.data}))
    assert {"Depth", "BookTicker", "Trade", "Ticker", "MarkPrice", "OpenInterest", "Liquidation",
            "OrderUpdate", "BalanceUpdate", "PositionUpdate"} <= kinds


def _ccxt(ex: SimExchange) -> Any:
    client = ccxt.backpack()
    markets = [client.parse_market(row) for row in ex.markets()]
    client.set_markets(markets, client.parse_currencies(ex.assets()) if hasattr(client, "parse_currencies") else None)
    return client


def test_ccxt_parses_markets_and_public_data(busy: tuple[SimExchange, list[Emit]]) -> None:
    """ccxt builds both markets with tick/step precision and parses ticker, book, trades and klines."""
    ex, _ = busy
    client = _ccxt(ex)
    spot, perp = client.market("BTC/USDC"), client.market("BTC/USDC:USDC")
    assert spot["precision"]["price"] == 0.1
    assert spot["precision"]["amount"] == 0.00001
    assert perp["swap"]
    ticker = client.parse_ticker(ex.ticker(PERP), perp)
    assert ticker["last"] > 0
    assert ticker["high"] >= ticker["low"]
    book = client.parse_order_book(ex.depth("BTC_USDC", 20), "BTC/USDC", None, "bids", "asks")
    assert book["bids"][0][0] < book["asks"][0][0]
    trades = client.parse_trades(ex.trades("BTC_USDC", 10), spot)
    assert len(trades) == 10
    assert all(t["price"] > 0 and t["amount"] > 0 for t in trades)
    now_s = ex.now_us() // 1_000_000
    candles = client.parse_ohlcvs(ex.klines(PERP, "1h", now_s - 6 * 3600, None, ex.now_us()), perp)
    assert 6 <= len(candles) <= 7
    assert all(c[2] >= max(c[1], c[4]) and c[3] <= min(c[1], c[4]) for c in candles)


def test_ccxt_parses_private_data(busy: tuple[SimExchange, list[Emit]]) -> None:
    """ccxt reads balances, orders, fills and the position the core returns."""
    ex, _ = busy
    client = _ccxt(ex)
    balance = client.parse_balance(ex.capital(KEY_A))
    assert balance["USDC"]["total"] > 0
    orders = [client.parse_order(o) for o in ex.order_history(KEY_A, {})]
    assert {o["status"] for o in orders} <= {"open", "closed", "canceled", "expired"}
    assert all(o["filled"] <= o["amount"] for o in orders)
    fills = client.parse_trades(ex.fill_history(KEY_A, {"fillType": "User"}))
    assert fills
    assert all(f["fee"]["currency"] in ("USDC", "BTC") for f in fills)
    positions = [client.parse_position(p) for p in ex.positions(KEY_A)]
    assert positions
    assert Decimal(str(positions[0]["contracts"])) > 0
    assert positions[0]["side"] == "long"


def test_project_rest_decoders_accept_every_view(busy: tuple[SimExchange, list[Emit]]) -> None:
    """engine.backpack.responses decodes every REST view the core serves, as JSON text."""
    from engine.backpack import responses as r

    ex, _ = busy
    now = ex.now_us()
    j = json.dumps
    r.decode_markets(j(ex.markets()))
    r.decode_market(j(ex.market(PERP)))
    r.decode_ticker(j(ex.ticker(PERP)))
    r.decode_tickers(j(ex.tickers()))
    r.decode_depth(j(ex.depth("BTC_USDC", 100)))
    for interval in ("1s", "1m", "1h", "1d", "1w", "1month"):
        assert r.decode_klines(j(ex.klines(PERP, interval, now // 1_000_000 - 7200, None, now)))
    assert r.decode_trades(j(ex.trades(PERP, 50)))
    r.decode_mark_prices(j(ex.mark_prices(PERP)))
    r.decode_open_interest(j(ex.open_interest(PERP, now)))
    assert r.decode_funding_rates(j(ex.funding_rates(PERP, 10, 0)))
    assert r.decode_balances(j(ex.capital(KEY_A)))
    r.decode_collateral(j(ex.collateral(KEY_A)))
    assert r.decode_positions(j(ex.positions(KEY_A, PERP)))
    r.decode_orders(j(ex.open_orders(KEY_A, {})))
    assert r.decode_orders(j(ex.order_history(KEY_A, {})), "/wapi/v1/history/orders")
    assert r.decode_fills(j(ex.fill_history(KEY_A, {})))
