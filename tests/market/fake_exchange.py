"""A small Backpack-shaped exchange for feed/cache tests: a real trio-websocket server on 127.0.0.1 that
records SUBSCRIBE frames and pushes documented frames on command, plus an httpx transport serving the public
REST endpoints the data layer polls (depth, ticker, markPrices, klines) from the same state.

It is deliberately small and scripted: each test says exactly which frames go out, so the property under test
(resubscription, stall detection, depth resync) is observable without timing luck.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import trio
import trio_websocket

from engine.backpack.signing import signing_string, verify_signature

__all__ = ["FakeExchange", "kline_row"]

T0_US = 1_788_000_000_000_000


def _epoch_s(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def kline_row(start_ms: int, step_ms: int, close: str) -> dict[str, Any]:
    """A REST kline row (protocol 3.5) for the bar starting at ``start_ms``."""
    fmt = "%Y-%m-%d %H:%M:%S"
    return {"start": datetime.fromtimestamp(start_ms / 1000, UTC).strftime(fmt),
            "end": datetime.fromtimestamp((start_ms + step_ms) / 1000, UTC).strftime(fmt),
            "open": close, "high": close, "low": close, "close": close, "volume": "1", "quoteVolume": close,
            "trades": "1"}


class FakeExchange:
    def __init__(self) -> None:
        self.subscriptions: list[list[str]] = []  # one list per connection, in arrival order
        self.private: list[dict[str, Any]] = []  # signed private SUBSCRIBE frames, verified
        self.connections: list[trio_websocket.WebSocketConnection] = []
        self.rest_calls: list[str] = []
        self.bids: dict[Decimal, Decimal] = {Decimal("99"): Decimal("1"), Decimal("98"): Decimal("2")}
        self.asks: dict[Decimal, Decimal] = {Decimal("101"): Decimal("1"), Decimal("102"): Decimal("3")}
        self.update_id = 1000
        self.last_price = Decimal("100")
        self.mark_price = Decimal("100.5")
        self.klines: list[dict[str, Any]] = []
        self.rest_status = 200
        self.time_us = T0_US
        self._changed = trio.Event()
        self.url = ""

    # -- waiting -------------------------------------------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    async def wait_subscribed(self, connections: int) -> None:
        await self.wait_for(lambda: len(self.subscriptions) >= connections and bool(self.subscriptions[-1]))

    # -- WebSocket -----------------------------------------------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, self._handler, "127.0.0.1", 0, None)
            self.url = f"ws://127.0.0.1:{server.port}"
            task_status.started()

    async def _handler(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        self.connections.append(ws)
        subs: list[str] = []
        self.subscriptions.append(subs)
        self._notify()
        try:
            while True:
                msg = json.loads(await ws.get_message())
                if "signature" in msg:
                    key, sig, ts, window = msg["signature"]
                    assert verify_signature(key, signing_string("subscribe", {}, int(ts), int(window)), sig)
                    self.private.append(msg)
                subs.extend(msg["params"])
                self._notify()
        except trio_websocket.ConnectionClosed:
            pass

    @property
    def ws(self) -> trio_websocket.WebSocketConnection:
        return self.connections[-1]

    async def send(self, stream: str, data: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps({"stream": stream, "data": data}))

    async def send_raw(self, text: str) -> None:
        await self.ws.send_message(text)

    async def drop(self) -> None:
        await self.ws.aclose(code=1011, reason="dropped by test")

    def tick(self) -> int:
        self.time_us += 1_000_000
        return self.time_us

    async def ticker(self, symbol: str, price: str) -> None:
        self.last_price = Decimal(price)
        await self.send(f"ticker.{symbol}", {"e": "ticker", "E": self.tick(), "s": symbol, "o": price, "c": price,
                                             "h": price, "l": price, "v": "1", "V": price, "n": 1})

    async def mark(self, symbol: str, price: str) -> None:
        self.mark_price = Decimal(price)
        await self.send(f"markPrice.{symbol}", {"e": "markPrice", "E": self.tick(), "T": self.time_us, "s": symbol,
                                                "p": price, "f": "0.0000125", "i": price, "n": 1788003600000})

    async def depth(self, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]], *,
                    skip: int = 0) -> None:
        """Change the book and push the delta; ``skip`` ids are consumed but never sent (a gap)."""
        self.update_id += skip
        first = self.update_id + 1
        self.update_id += 1
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels:
                if Decimal(s) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(s)
        await self.send(f"depth.{symbol}", {"e": "depth", "E": self.tick(), "T": self.time_us, "s": symbol,
                                            "U": first, "u": self.update_id, "b": [list(b) for b in bids],
                                            "a": [list(a) for a in asks]})

    # -- REST ----------------------------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._rest)

    def _rest(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.rest_calls.append(path)
        self._notify()
        if self.rest_status != 200:
            return httpx.Response(self.rest_status, json={"code": "SERVER_ERROR", "message": "test"})
        q = request.url.params
        if path == "/api/v1/depth":
            return httpx.Response(200, json={
                "bids": [[str(p), str(s)] for p, s in sorted(self.bids.items())],
                "asks": [[str(p), str(s)] for p, s in sorted(self.asks.items())],
                "lastUpdateId": str(self.update_id), "timestamp": self.time_us})
        if path == "/api/v1/ticker":
            p = str(self.last_price)
            return httpx.Response(200, json={"symbol": q["symbol"], "lastPrice": p, "firstPrice": p, "high": p,
                                             "low": p, "volume": "1", "quoteVolume": p, "trades": "1",
                                             "priceChange": "0", "priceChangePercent": "0"})
        if path == "/api/v1/markPrices":
            return httpx.Response(200, json=[{"symbol": q["symbol"], "markPrice": str(self.mark_price),
                                              "indexPrice": str(self.mark_price), "fundingRate": "0.0000125",
                                              "nextFundingTimestamp": 1788003600000}])
        if path == "/api/v1/klines":
            lo, hi = int(q["startTime"]), int(q.get("endTime", "99999999999"))
            rows = [k for k in self.klines if lo <= _epoch_s(k["start"]) < hi]
            return httpx.Response(200, json=rows)
        return httpx.Response(404, text="not found")
