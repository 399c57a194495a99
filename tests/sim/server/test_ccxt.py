"""Third-party compatibility: ccxt (sync REST in a worker thread) and ccxt.pro (asyncio in its own thread)."""

from __future__ import annotations

import asyncio
from typing import Any

import trio

from tests.sim.server.conftest import SECRET, SIGNER, running_sim, sim_config

CCXT_SYMBOL = "BTC/USDC:USDC"


def _rest_session(rest_url: str) -> dict[str, Any]:
    import ccxt

    exchange = ccxt.backpack({
        "apiKey": SIGNER.public_key_b64, "secret": SECRET, "timeout": 10_000, "enableRateLimit": False,
        "urls": {"api": {"public": rest_url, "private": rest_url}},
    })
    out: dict[str, Any] = {}
    markets = exchange.load_markets()
    out["has_symbol"] = CCXT_SYMBOL in markets
    out["ticker"] = exchange.fetch_ticker(CCXT_SYMBOL)
    out["tickers"] = exchange.fetch_tickers([CCXT_SYMBOL])
    out["book"] = exchange.fetch_order_book(CCXT_SYMBOL, limit=5)
    out["ohlcv"] = exchange.fetch_ohlcv(CCXT_SYMBOL, "1m", limit=10)
    out["trades"] = exchange.fetch_trades(CCXT_SYMBOL, limit=5)
    out["balance"] = exchange.fetch_balance()
    ask = out["book"]["asks"][0][0]
    out["ioc"] = exchange.create_order(CCXT_SYMBOL, "limit", "buy", 0.001, ask,
                                       {"timeInForce": "IOC", "clientOrderId": 4242})
    out["market"] = exchange.create_order(CCXT_SYMBOL, "market", "buy", 0.001)
    low = round(out["book"]["bids"][0][0] * 0.9, 1)
    resting = exchange.create_order(CCXT_SYMBOL, "limit", "buy", 0.001, low, {"postOnly": True})
    out["open"] = exchange.fetch_open_orders(CCXT_SYMBOL)
    out["cancel"] = exchange.cancel_order(resting["id"], CCXT_SYMBOL)
    out["open_after"] = exchange.fetch_open_orders(CCXT_SYMBOL)
    out["my_trades"] = exchange.fetch_my_trades(CCXT_SYMBOL)
    out["positions"] = exchange.fetch_positions([CCXT_SYMBOL])
    out["funding"] = exchange.fetch_funding_rate(CCXT_SYMBOL)
    out["resting_id"] = resting["id"]
    return out


async def test_ccxt_rest_client_works_unchanged() -> None:
    """ccxt's backpack client runs its public and private REST calls against the simulator."""
    with trio.fail_after(90):
        async with running_sim() as sim:
            out = await trio.to_thread.run_sync(_rest_session, sim.rest_url, abandon_on_cancel=True)
    assert out["has_symbol"]
    assert out["ticker"]["last"] > 0
    assert CCXT_SYMBOL in out["tickers"]
    assert out["book"]["asks"][0][0] > out["book"]["bids"][0][0]
    assert len(out["ohlcv"]) > 0
    assert all(len(row) == 6 for row in out["ohlcv"])
    assert out["trades"] is not None
    assert out["balance"]["USDC"]["total"] > 0
    assert out["ioc"]["clientOrderId"] == "4242"
    assert out["market"]["status"] == "closed"
    assert [o["id"] for o in out["open"]] == [out["resting_id"]]
    assert out["cancel"]["status"] == "canceled"
    assert out["open_after"] == []
    assert len(out["my_trades"]) >= 1
    assert out["positions"]
    assert out["positions"][0]["symbol"] == CCXT_SYMBOL
    assert out["funding"]["symbol"] == CCXT_SYMBOL


def _pro_session(rest_url: str, ws_url: str) -> dict[str, Any]:
    import ccxt.pro

    async def main() -> dict[str, Any]:
        exchange = ccxt.pro.backpack({
            "apiKey": SIGNER.public_key_b64, "secret": SECRET, "timeout": 10_000,
            "urls": {"api": {"public": rest_url, "private": rest_url,
                             "ws": {"public": ws_url, "private": ws_url}}},
        })
        out: dict[str, Any] = {}
        try:
            await exchange.load_markets()
            out["ticker"] = await asyncio.wait_for(exchange.watch_ticker(CCXT_SYMBOL), 15)
            out["book"] = await asyncio.wait_for(exchange.watch_order_book(CCXT_SYMBOL), 15)
            out["ohlcv"] = await asyncio.wait_for(exchange.watch_ohlcv(CCXT_SYMBOL, "1m"), 15)
            out["trades"] = await asyncio.wait_for(exchange.watch_trades(CCXT_SYMBOL), 30)
            orders = asyncio.ensure_future(exchange.watch_orders(CCXT_SYMBOL))
            await asyncio.sleep(0.5)
            placed = await exchange.create_order(CCXT_SYMBOL, "market", "buy", 0.001)
            out["orders"] = await asyncio.wait_for(orders, 15)
            out["placed_id"] = placed["id"]
        finally:
            await exchange.close()
        return out

    return asyncio.run(main())


async def test_ccxt_pro_streams_work_unchanged() -> None:
    """ccxt.pro watch_ticker/order_book/ohlcv/trades/orders receive data from the simulator."""
    with trio.fail_after(120):
        async with running_sim(sim_config(speed=60.0)) as sim:
            out = await trio.to_thread.run_sync(_pro_session, sim.rest_url, sim.ws_url, abandon_on_cancel=True)
    assert out["ticker"]["symbol"] == CCXT_SYMBOL
    assert out["book"]["asks"]
    assert out["book"]["bids"]
    assert out["ohlcv"]
    assert out["trades"]
    assert out["placed_id"] in {o["id"] for o in out["orders"]}
