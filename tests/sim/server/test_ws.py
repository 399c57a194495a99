"""WebSocket conformance of the simulator on a real loopback socket (protocol section 5)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio
import trio_websocket
import wsproto.events

from engine.backpack import decode_frame
from engine.backpack.events import WsError
from tests.sim.server.conftest import (
    SIGNER,
    SYMBOL,
    collect,
    next_json,
    raw_ws_connect,
    running_sim,
    signed,
    sim_config,
    subscribe,
    wait_frame,
    ws_client,
    ws_signature,
)

PUBLIC = [f"ticker.{SYMBOL}", f"depth.{SYMBOL}", f"bookTicker.{SYMBOL}", f"trade.{SYMBOL}",
          f"markPrice.{SYMBOL}", f"kline.1m.{SYMBOL}", f"depth.200ms.{SYMBOL}"]


async def test_public_streams_are_enveloped_and_decode() -> None:
    """Each public stream delivers {"stream","data"} frames that the project's decoder accepts."""
    with trio.fail_after(40):
        async with running_sim(sim_config(speed=120.0)) as sim, \
                ws_client(sim) as ws:
            await subscribe(ws, *PUBLIC)
            seen: dict[str, int] = {}
            while set(seen) != set(PUBLIC):
                raw = await ws.get_message()
                frame = json.loads(raw)
                assert set(frame) == {"stream", "data"}
                decode_frame(raw)
                seen[frame["stream"]] = seen.get(frame["stream"], 0) + 1


async def test_depth_sequence_is_gapless_and_matches_rest_snapshot() -> None:
    """Depth frames satisfy U == previous u + 1, and a REST snapshot fits into the stream."""
    with trio.fail_after(40):
        async with running_sim(sim_config(speed=120.0)) as sim, \
                ws_client(sim) as ws, \
                httpx.AsyncClient(base_url=sim.rest_url) as client:
            await subscribe(ws, f"depth.{SYMBOL}")
            first = await next_json(ws)
            snapshot = (await client.get("/api/v1/depth", params={"symbol": SYMBOL})).json()
            last_u = first["data"]["u"]
            snap_id = int(snapshot["lastUpdateId"])
            assert snap_id >= last_u
            for _ in range(50):
                data = (await next_json(ws))["data"]
                assert data["U"] == last_u + 1
                last_u = data["u"]


async def test_error_frames_and_silence() -> None:
    """4006/4008/4002 error frames keep the socket open; an unknown symbol is silent; no subscribe ack."""
    with trio.fail_after(30):
        async with running_sim() as sim, ws_client(sim) as ws:
            await subscribe(ws, "nope.BTC_USDC_PERP")
            assert await next_json(ws) == {"id": None, "error": {"code": 4006, "message": "Invalid stream"}}
            await subscribe(ws, f"depth.100ms.{SYMBOL}")
            assert (await next_json(ws))["error"]["code"] == 4008
            await ws.send_message("{not json")
            assert (await next_json(ws))["error"] == {"code": 4002, "message": "Parse error"}
            await ws.send_message(json.dumps({"method": "LIST", "params": []}))
            error = decode_frame(await ws.get_message())
            assert isinstance(error, WsError)
            await subscribe(ws, "trade.NOPE_USDC_PERP", "ticker.NOPE_USDC")
            assert await collect(ws, 2.5) == []


async def test_duplicate_subscribe_and_unsubscribe() -> None:
    """Subscribing twice does not duplicate frames; UNSUBSCRIBE stops them."""
    with trio.fail_after(40):
        async with running_sim(sim_config(speed=120.0)) as sim, \
                ws_client(sim) as ws:
            await subscribe(ws, f"ticker.{SYMBOL}")
            await subscribe(ws, f"ticker.{SYMBOL}")
            frames = [json.loads(f) for f in await collect(ws, 2.5)]
            events = [f["data"]["E"] for f in frames]
            assert events
            assert len(events) == len(set(events))
            await subscribe(ws, f"ticker.{SYMBOL}", method="UNSUBSCRIBE")
            await collect(ws, 0.3)
            assert await collect(ws, 1.5) == []


async def test_private_streams_need_a_valid_signature_and_only_see_own_account() -> None:
    """A bad signature gets 4003; orderUpdate reaches only the signer's connection; positions come on subscribe."""
    with trio.fail_after(40):
        async with running_sim() as sim, httpx.AsyncClient(base_url=sim.rest_url) as client, \
                ws_client(sim) as mine, \
                ws_client(sim) as stranger:
            bad = ws_signature()
            bad[1] = ws_signature(timestamp_ms=1)[1]
            await subscribe(stranger, "account.orderUpdate", signature=bad)
            assert await next_json(stranger) == {"id": None, "error": {"code": 4003, "message": "Invalid signature"}}
            await subscribe(mine, "account.orderUpdate", "account.orderUpdate." + SYMBOL,
                            signature=ws_signature())
            await trio.sleep(0.2)  # let the subscription land before the order (no ack exists to wait for)
            reply = await signed(client, "POST", "/api/v1/order", "orderExecute", {
                "symbol": SYMBOL, "side": "Bid", "orderType": "Market", "quantity": "0.001", "clientId": 5})
            assert reply.status_code == 200, reply.text
            accepted = await wait_frame(mine, lambda f: f["data"].get("e") == "orderAccepted")
            assert accepted["data"]["c"] == 5
            assert accepted["stream"] in ("account.orderUpdate", f"account.orderUpdate.{SYMBOL}")
            decode_frame(json.dumps(accepted))
            assert await collect(stranger, 1.0) == []
            await subscribe(mine, "account.positionUpdate", signature=ws_signature())
            position = await wait_frame(mine, lambda f: f["stream"] == "account.positionUpdate")
            assert "e" not in position["data"]
            assert position["data"]["s"] == SYMBOL
            assert SIGNER.public_key_b64 in {k.partition("\x00")[0] for c in sim.app.connections for k in c.streams}


async def _count_pings(port: int, seconds: float) -> int:
    stream, conn = await raw_ws_connect(port)
    pings = 0
    with trio.move_on_after(seconds):
        while True:
            data = await stream.receive_some(65536)
            if not data:
                break
            conn.receive_data(data)
            for event in conn.events():
                if isinstance(event, wsproto.events.Ping):
                    pings += 1
                    await stream.send_all(conn.send(event.response()))
    await stream.aclose()
    return pings


async def test_server_sends_protocol_pings_at_the_configured_interval() -> None:
    """With a 0.25 s ping interval a raw client sees protocol pings (about 4 per second)."""
    with trio.fail_after(20):
        async with running_sim(sim_config(ping_interval_s=0.25)) as sim:
            pings = await _count_pings(sim.port, 1.3)
            assert 3 <= pings <= 7


async def test_slow_client_is_dropped_without_blocking_others() -> None:
    """A client that stops reading overflows its bounded outbox and is dropped; a reading client keeps going."""
    with trio.fail_after(60):
        cfg = sim_config(speed=float("inf"), ws_queue_size=16, max_step_market_s=5.0)
        async with running_sim(cfg) as sim, ws_client(sim) as fast:
            stream, conn = await raw_ws_connect(sim.port, rcvbuf=4096)
            await stream.send_all(conn.send(wsproto.events.TextMessage(
                data=json.dumps({"method": "SUBSCRIBE", "params": PUBLIC}))))
            await subscribe(fast, f"trade.{SYMBOL}")
            received = 0
            while sim.statistics().ws_dropped_slow == 0:
                await fast.get_message()
                received += 1
            assert received > 0
            await fast.get_message()  # the reading client is still served after the drop
            await stream.aclose()


async def test_frames_decode_across_all_streams_for_a_while() -> None:
    """Every frame on every public stream for two seconds decodes without error."""
    with trio.fail_after(30):
        async with running_sim(sim_config(speed=300.0)) as sim, \
                ws_client(sim) as ws:
            await subscribe(ws, *PUBLIC, f"openInterest.{SYMBOL}", "liquidation")
            frames = await collect(ws, 2.0)
            assert len(frames) > 20
            kinds: set[Any] = {type(decode_frame(f)).__name__ for f in frames}
            assert {"Depth", "Ticker", "MarkPrice"} <= kinds


async def test_firehose_frames_are_valid_and_sequenced() -> None:
    """The firehose endpoint pushes decodable frames with gapless depth ids at a high rate."""
    with trio.fail_after(30):
        async with running_sim(sim_config(firehose_rate=20_000)) as sim:
            assert sim.firehose_url is not None
            async with trio_websocket.open_websocket_url(sim.firehose_url) as ws:
                await subscribe(ws, f"depth.{SYMBOL}", f"trade.{SYMBOL}")
                last_u = None
                kinds: set[str] = set()
                for _ in range(3000):
                    raw = await ws.get_message()
                    event = decode_frame(raw)
                    kinds.add(type(event).__name__)
                    data = json.loads(raw)["data"]
                    if data["e"] == "depth":
                        if last_u is not None:
                            assert data["U"] == last_u + 1
                        last_u = data["u"]
                assert "Depth" in kinds
                assert sim.statistics().firehose_frames >= 3000
