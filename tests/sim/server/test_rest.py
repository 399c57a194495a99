"""REST conformance of the simulator on a real loopback socket (protocol sections 1-4 and 6)."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import trio

from engine.backpack.signing import Signer
from engine.sim.server import SimHandle
from tests.sim.server.conftest import (
    SIGNER,
    SYMBOL,
    decode_all,
    now_ms,
    recording_client,
    running_sim,
    signed,
    signed_batch,
    signed_headers,
    sim_config,
)


async def test_ping_and_time_are_plain_text() -> None:
    """/ping answers text 'pong' and /time the host clock in ms as text."""
    with trio.fail_after(20):
        async with running_sim() as sim, httpx.AsyncClient(base_url=sim.rest_url) as client:
            ping = await client.get("/api/v1/ping")
            assert ping.status_code == 200
            assert ping.text == "pong"
            assert ping.headers["content-type"].startswith("text/plain")
            before = now_ms()
            reply = await client.get("/api/v1/time")
            assert reply.headers["content-type"].startswith("text/plain")
            assert before <= int(reply.text) <= now_ms()


async def test_unknown_path_and_wrong_method() -> None:
    """Unknown paths are plain-text 404 'not found'; a known path with a wrong method is 405."""
    with trio.fail_after(20):
        async with running_sim() as sim, httpx.AsyncClient(base_url=sim.rest_url) as client:
            reply = await client.get("/api/v1/nope")
            assert (reply.status_code, reply.text) == (404, "not found")
            assert (await client.put("/api/v1/markets")).status_code == 405


async def test_public_market_data_shapes() -> None:
    """Markets, ticker, depth, klines, trades and perp data answer JSON with string decimals, no envelope."""
    with trio.fail_after(30):
        async with running_sim() as sim:
            client, records = recording_client(sim)
            async with client:
                await _public_calls(sim, client)
            assert decode_all(records) == 9


async def _public_calls(sim: SimHandle, client: httpx.AsyncClient) -> None:
    """The calls of the test above (kept apart so the recording client wraps them)."""
    assert (await client.get("/api/v1/status")).json()["status"] == "Ok"
    markets = (await client.get("/api/v1/markets")).json()
    assert SYMBOL in {m["symbol"] for m in markets}
    assert (await client.get("/api/v1/market", params={"symbol": SYMBOL})).json()["symbol"] == SYMBOL
    ticker = (await client.get("/api/v1/ticker", params={"symbol": SYMBOL})).json()
    assert isinstance(ticker["lastPrice"], str)
    Decimal(ticker["lastPrice"])
    depth = (await client.get("/api/v1/depth", params={"symbol": SYMBOL, "limit": "5"})).json()
    assert isinstance(depth["lastUpdateId"], str)
    assert isinstance(depth["timestamp"], int)
    asks = [Decimal(p) for p, _ in depth["asks"]]
    bids = [Decimal(p) for p, _ in depth["bids"]]
    assert asks == sorted(asks)
    assert bids == sorted(bids)
    assert 0 < len(asks) <= 5
    assert bids[-1] < asks[0]
    start_s = sim.app.market_now_us // 1_000_000 - 3600
    klines = (await client.get("/api/v1/klines", params={"symbol": SYMBOL, "interval": "1m",
                                                         "startTime": str(start_s)})).json()
    assert klines
    assert isinstance(klines[0]["open"], str)
    assert (await client.get("/api/v1/trades", params={"symbol": SYMBOL, "limit": "5"})).status_code == 200
    marks = (await client.get("/api/v1/markPrices", params={"symbol": SYMBOL})).json()
    assert marks[0]["symbol"] == SYMBOL
    assert (await client.get("/api/v1/openInterest", params={"symbol": SYMBOL})).status_code == 200
    rates = await client.get("/api/v1/fundingRates", params={"symbol": SYMBOL})
    assert rates.status_code == 200


async def test_parse_failures_are_plain_text_and_semantic_errors_json() -> None:
    """A bad depth limit is the exchange's plain-text 400; an unknown symbol is a JSON error body."""
    with trio.fail_after(20):
        async with running_sim() as sim, httpx.AsyncClient(base_url=sim.rest_url) as client:
            bad = await client.get("/api/v1/depth", params={"symbol": SYMBOL, "limit": "7"})
            assert bad.status_code == 400
            assert bad.text == ('failed to parse parameter `limit`: failed to parse "DepthLimit": Expect a valid '
                                "enumeration value.")
            unknown = await client.get("/api/v1/depth", params={"symbol": "NOPE_USDC"})
            assert unknown.status_code == 400
            assert unknown.json()["code"] == "INVALID_CLIENT_REQUEST"
            no_start = await client.get("/api/v1/klines", params={"symbol": SYMBOL, "interval": "1m"})
            assert no_start.status_code == 400
            assert no_start.text.startswith("failed to parse parameter `startTime`")


async def test_signed_requests_are_verified() -> None:
    """A correct signature passes; a wrong key, tampered params, expiry and missing headers are refused."""
    with trio.fail_after(20):
        async with running_sim() as sim, httpx.AsyncClient(base_url=sim.rest_url) as client:
            ok = await signed(client, "GET", "/api/v1/capital", "balanceQuery")
            assert ok.status_code == 200
            assert "USDC" in ok.json()
            other, _ = Signer.generate()
            headers = signed_headers("balanceQuery", {}, signer=SIGNER)
            headers["X-API-Key"] = other.public_key_b64
            forged = await client.get("/api/v1/capital", headers=headers)
            assert forged.status_code == 401
            assert forged.json() == {"code": "INVALID_CLIENT_REQUEST", "message": "Invalid signature"}
            tampered = await client.get("/api/v1/orders", params={"symbol": "ETH_USDC"},
                                        headers=signed_headers("orderQueryAll", {"symbol": SYMBOL}))
            assert tampered.json()["message"] == "Invalid signature"
            wrong_instruction = await client.get("/api/v1/capital", headers=signed_headers("accountQuery", {}))
            assert wrong_instruction.status_code == 401
            old = await client.get("/api/v1/capital",
                                   headers=signed_headers("balanceQuery", {}, timestamp_ms=now_ms() - 10_000))
            assert old.json() == {"code": "INVALID_CLIENT_REQUEST", "message": "Request has expired"}
            missing = await client.get("/api/v1/capital")
            assert missing.status_code == 401
            assert sim.statistics().signature_failures == 5


async def test_signature_is_over_the_literal_body_text() -> None:
    """Numbers are verified as the text sent: 0.00150 signed as 0.0015 does not verify."""
    with trio.fail_after(20):
        async with running_sim() as sim, httpx.AsyncClient(base_url=sim.rest_url) as client:
            body = {"symbol": SYMBOL, "clientId": 7}
            headers = signed_headers("orderCancel", {"symbol": SYMBOL, "clientId": "7.0"})
            reply = await client.request("DELETE", "/api/v1/order", content=json.dumps(body), headers=headers)
            assert reply.json()["message"] == "Invalid signature"
            headers = signed_headers("orderCancel", body)
            reply = await client.request("DELETE", "/api/v1/order", content=json.dumps(body), headers=headers)
            assert reply.json().get("message") != "Invalid signature"


async def test_order_lifecycle_over_rest() -> None:
    """Limit IOC, resting limit, get/open orders, cancel, batch and history all answer as the exchange does."""
    with trio.fail_after(30):
        async with running_sim() as sim:
            client, records = recording_client(sim)
            async with client:
                await _lifecycle_calls(sim, client)
            assert decode_all(records) >= 13


async def _lifecycle_calls(sim: SimHandle, client: httpx.AsyncClient) -> None:
    """The calls of the test above (kept apart so the recording client wraps them)."""
    depth = (await client.get("/api/v1/depth", params={"symbol": SYMBOL, "limit": "5"})).json()
    best_ask = Decimal(depth["asks"][0][0])
    best_bid = Decimal(depth["bids"][-1][0])
    ioc = await signed(client, "POST", "/api/v1/order", "orderExecute", {
        "symbol": SYMBOL, "side": "Bid", "orderType": "Limit", "price": str(best_ask),
        "quantity": "0.001", "timeInForce": "IOC", "clientId": 11})
    assert ioc.status_code == 200, ioc.text
    assert ioc.json()["clientId"] == 11
    assert ioc.json()["status"] in ("Filled", "Expired", "PartiallyFilled")
    low = str((best_bid * Decimal("0.9")).quantize(Decimal("0.1")))
    rest = await signed(client, "POST", "/api/v1/order", "orderExecute", {
        "symbol": SYMBOL, "side": "Bid", "orderType": "Limit", "price": low, "quantity": "0.001",
        "postOnly": True, "clientId": 12})
    assert rest.json()["status"] == "New", rest.text
    order_id = rest.json()["id"]
    got = await signed(client, "GET", "/api/v1/order", "orderQuery", {"symbol": SYMBOL, "clientId": "12"})
    assert got.json()["id"] == order_id
    open_orders = await signed(client, "GET", "/api/v1/orders", "orderQueryAll", {"symbol": SYMBOL})
    assert [o["id"] for o in open_orders.json()] == [order_id]
    cancelled = await signed(client, "DELETE", "/api/v1/order", "orderCancel",
                             {"symbol": SYMBOL, "orderId": order_id})
    assert cancelled.json()["status"] == "Cancelled"
    gone = await signed(client, "GET", "/api/v1/order", "orderQuery", {"symbol": SYMBOL, "orderId": order_id})
    assert gone.status_code == 404
    assert gone.json()["code"] == "RESOURCE_NOT_FOUND"
    batch = await signed_batch(client, [
        {"symbol": SYMBOL, "side": "Bid", "orderType": "Limit", "price": low, "quantity": "0.001",
         "postOnly": True},
        {"symbol": SYMBOL, "side": "Bid", "orderType": "Limit", "price": low, "quantity": "0.002",
         "postOnly": True},
    ])
    assert batch.status_code == 200, batch.text
    assert len(batch.json()) == 2
    cancel_all = await signed(client, "DELETE", "/api/v1/orders", "orderCancelAll", {"symbol": SYMBOL})
    assert len(cancel_all.json()) == 2
    history = await signed(client, "GET", "/wapi/v1/history/orders", "orderHistoryQueryAll",
                           {"symbol": SYMBOL})
    assert len(history.json()) >= 4
    fills = await signed(client, "GET", "/wapi/v1/history/fills", "fillHistoryQueryAll", {"symbol": SYMBOL})
    assert fills.status_code == 200
    for path, instruction in (("/api/v1/capital/collateral", "collateralQuery"),
                              ("/api/v1/account", "accountQuery"), ("/api/v1/position", "positionQuery"),
                              ("/wapi/v1/history/funding", "fundingHistoryQueryAll")):
        assert (await signed(client, "GET", path, instruction)).status_code == 200, path
    assert sim.statistics().rest_errors == 1


async def test_history_rate_limit_answers_429() -> None:
    """The 31st klines request within a minute is refused with 429 TOO_MANY_REQUESTS."""
    with trio.fail_after(30):
        async with running_sim() as sim, httpx.AsyncClient(base_url=sim.rest_url) as client:
            params = {"symbol": SYMBOL, "interval": "1h", "startTime": str(sim.app.market_now_us // 1_000_000)}
            codes = [(await client.get("/api/v1/klines", params=params)).status_code for _ in range(31)]
            assert codes[:30] == [200] * 30
            last = await client.get("/api/v1/klines", params=params)
            assert last.status_code == 429
            assert last.json()["code"] == "TOO_MANY_REQUESTS"
            assert (await client.get("/api/v1/ping")).status_code == 200


async def test_general_rate_limit_is_per_key() -> None:
    """With a budget of 5/min one key is refused on its 6th request while another key still passes."""
    with trio.fail_after(20):
        async with running_sim(sim_config(rest_limit_per_min=5)) as sim, \
                httpx.AsyncClient(base_url=sim.rest_url) as client:
            codes = [(await signed(client, "GET", "/api/v1/capital", "balanceQuery")).status_code for _ in range(6)]
            assert codes == [200] * 5 + [429]
            other, _ = Signer.generate()
            reply = await signed(client, "GET", "/api/v1/capital", "balanceQuery", signer=other)
            assert reply.status_code == 200


async def test_taker_speed_bump_delays_orders_that_can_take() -> None:
    """With a 300 ms speed bump a market order takes >= 0.3 s and a post-only order does not wait."""
    with trio.fail_after(30):
        async with running_sim(sim_config(taker_speed_bump_ms=300)) as sim, \
                httpx.AsyncClient(base_url=sim.rest_url) as client:
            start = trio.current_time()
            reply = await signed(client, "POST", "/api/v1/order", "orderExecute", {
                "symbol": SYMBOL, "side": "Bid", "orderType": "Market", "quantity": "0.001"})
            assert reply.status_code == 200, reply.text
            assert trio.current_time() - start >= 0.3
            start = trio.current_time()
            await signed(client, "POST", "/api/v1/order", "orderExecute", {
                "symbol": SYMBOL, "side": "Bid", "orderType": "Limit", "price": "1000", "quantity": "0.001",
                "postOnly": True})
            assert trio.current_time() - start < 0.3
