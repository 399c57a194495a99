"""Every fault kind, injected through the run-time handle or the config, as a real client sees it."""

from __future__ import annotations

import json

import attrs
import httpx
import pytest
import trio
import trio_websocket

from engine.backpack import decode_frame
from engine.errors import ProtocolError
from engine.sim.config import FaultConfig
from tests.sim.server.conftest import (
    SYMBOL,
    collect,
    next_json,
    now_ms,
    running_sim,
    signed,
    sim_config,
    subscribe,
    ws_client,
)


async def _drain(ws: trio_websocket.WebSocketConnection) -> None:
    for _ in range(100_000):
        await ws.get_message()


async def test_drop_connections_now() -> None:
    """faults.drop_connections() closes every open WebSocket and is counted."""
    with trio.fail_after(20):
        async with running_sim() as sim:
            async with ws_client(sim) as one, \
                    ws_client(sim) as two:
                await subscribe(one, f"ticker.{SYMBOL}")
                await next_json(one)
                sim.faults.drop_connections()
                for ws in (one, two):
                    with pytest.raises(trio_websocket.ConnectionClosed):
                        await _drain(ws)
            assert sim.faults.statistics().connections_dropped == 2


async def test_drop_every_n_seconds() -> None:
    """With drop_ws_every_s a client is disconnected repeatedly; each reconnect works."""
    with trio.fail_after(20):
        async with running_sim(sim_config(faults=FaultConfig(drop_ws_every_s=0.4))) as sim:
            for _ in range(2):
                async with ws_client(sim) as ws:
                    with pytest.raises(trio_websocket.ConnectionClosed):
                        await ws.get_message()
            assert sim.faults.statistics().connections_dropped >= 2


async def test_stall_keeps_socket_open_but_silent() -> None:
    """A stalled stream sends nothing while the socket still answers pings; resume restores it."""
    with trio.fail_after(30):
        async with running_sim(sim_config(speed=120.0)) as sim, \
                ws_client(sim) as ws:
            await subscribe(ws, f"ticker.{SYMBOL}")
            await next_json(ws)
            sim.faults.stall(f"ticker.{SYMBOL}")
            await collect(ws, 0.2)
            assert await collect(ws, 1.5) == []
            await ws.ping()
            sim.faults.resume()
            assert (await next_json(ws))["stream"] == f"ticker.{SYMBOL}"
            assert sim.faults.statistics().frames_stalled >= 1


async def test_refuse_connections_for_a_while() -> None:
    """During a refusal window the handshake is rejected (HTTP 403); afterwards it succeeds."""
    with trio.fail_after(20):
        async with running_sim() as sim:
            sim.faults.refuse_connections(0.5)
            rejected: list[trio_websocket.ConnectionRejected] = []
            try:
                async with ws_client(sim):
                    pass
            except* trio_websocket.ConnectionRejected as group:
                rejected.extend(e for e in group.exceptions if isinstance(e, trio_websocket.ConnectionRejected))
            assert [r.status_code for r in rejected] == [403]
            await trio.sleep(0.6)
            async with ws_client(sim) as ws:
                await ws.ping()
            assert sim.faults.statistics().connections_refused == 1


async def test_malformed_frames() -> None:
    """At rate 1 every data frame is truncated JSON that the decoder rejects as a ProtocolError."""
    with trio.fail_after(20):
        async with running_sim(sim_config(speed=120.0, faults=FaultConfig(malformed_frame_rate=1.0))) as sim, \
                ws_client(sim) as ws:
            await subscribe(ws, f"ticker.{SYMBOL}")
            raw = await ws.get_message()
            with pytest.raises(ProtocolError):
                decode_frame(raw)
            assert sim.faults.statistics().frames_malformed >= 1


async def test_depth_sequence_gaps() -> None:
    """With a depth gap rate the client sees U != previous u + 1."""
    with trio.fail_after(30):
        async with running_sim(sim_config(speed=120.0, faults=FaultConfig(depth_gap_rate=0.3))) as sim, \
                ws_client(sim) as ws:
            await subscribe(ws, f"depth.{SYMBOL}")
            last_u = (await next_json(ws))["data"]["u"]
            gaps = 0
            for _ in range(100):
                data = (await next_json(ws))["data"]
                gaps += data["U"] != last_u + 1
                last_u = data["u"]
                if gaps:
                    break
            assert gaps
            assert sim.faults.statistics().depth_gaps >= 1


async def test_rest_5xx_and_429_at_a_rate() -> None:
    """At rate 1 every REST call is a 503 (then, switched, a 429) with a JSON error body."""
    with trio.fail_after(20):
        async with running_sim(sim_config(faults=FaultConfig(rest_5xx_rate=1.0))) as sim, \
                httpx.AsyncClient(base_url=sim.rest_url) as client:
            reply = await client.get("/api/v1/markets")
            assert reply.status_code == 503
            assert reply.json()["code"] == "SERVER_ERROR"
            sim.faults.rest_5xx_rate = 0.0
            sim.faults.rest_429_rate = 1.0
            reply = await client.get("/api/v1/markets")
            assert reply.status_code == 429
            assert reply.json()["code"] == "TOO_MANY_REQUESTS"
            stats = sim.faults.statistics()
            assert (stats.rest_5xx, stats.rest_429) == (1, 1)


async def test_added_latency() -> None:
    """latency_ms delays every REST reply by at least that much."""
    with trio.fail_after(20):
        async with running_sim(sim_config(faults=FaultConfig(latency_ms=250))) as sim, \
                httpx.AsyncClient(base_url=sim.rest_url) as client:
            start = trio.current_time()
            assert (await client.get("/api/v1/ping")).text == "pong"
            assert trio.current_time() - start >= 0.25
            assert sim.faults.statistics().rest_delayed == 1


async def test_clock_skew_moves_server_time_and_signature_window() -> None:
    """A -10 s skew shows in /time, and a request stamped with the client's clock is refused."""
    with trio.fail_after(20):
        async with running_sim(sim_config(faults=FaultConfig(clock_skew_ms=-10_000))) as sim, \
                httpx.AsyncClient(base_url=sim.rest_url) as client:
            server_ms = int((await client.get("/api/v1/time")).text)
            assert 9_000 <= now_ms() - server_ms <= 11_000
            refused = await signed(client, "GET", "/api/v1/capital", "balanceQuery")
            assert refused.json()["code"] == "INVALID_CLIENT_REQUEST"
            assert refused.json()["message"].startswith("Invalid timestamp")
            synced = await signed(client, "GET", "/api/v1/capital", "balanceQuery", timestamp_ms=server_ms)
            assert synced.status_code == 200
            assert sim.faults.statistics().clock_skewed >= 3


async def test_lost_order_response_executes_the_order() -> None:
    """The order executes but the connection closes without a body; the order is in history afterwards."""
    with trio.fail_after(20):
        async with running_sim() as sim, httpx.AsyncClient(base_url=sim.rest_url) as client:
            sim.faults.lose_next_order_responses(1)
            with pytest.raises(httpx.RemoteProtocolError):
                await signed(client, "POST", "/api/v1/order", "orderExecute", {
                    "symbol": SYMBOL, "side": "Bid", "orderType": "Market", "quantity": "0.001", "clientId": 77})
            history = await signed(client, "GET", "/wapi/v1/history/orders", "orderHistoryQueryAll",
                                   {"symbol": SYMBOL})
            assert [o["clientId"] for o in history.json()] == [77]
            assert sim.faults.statistics().order_responses_lost == 1


async def test_frames_survive_a_fault_free_run() -> None:
    """Without faults nothing is counted as injected (the counters do not lie)."""
    with trio.fail_after(20):
        async with running_sim(sim_config(speed=120.0)) as sim, \
                ws_client(sim) as ws:
            await subscribe(ws, f"depth.{SYMBOL}", f"ticker.{SYMBOL}")
            for raw in await collect(ws, 1.0):
                json.loads(raw)
            stats = sim.faults.statistics()
            assert attrs.asdict(stats) == dict.fromkeys(attrs.asdict(stats), 0)
