"""Baseline consumers on asyncio, each run in its own process: the original polling design and ccxt.pro.

Modes (``python -m bench.baselines.asyncio_clients MODE --ws URL --rest URL ...``), each printing one JSON line:

* ``poll``: the original design. An aiohttp WebSocket client ``json.loads`` every frame into a dict cache
  (symbol -> last price); a strategy loop wakes every 100 ms and records, for each symbol whose price changed,
  what it finds. Output: the deliveries ``[receive µs, send µs of the newest price seen]`` and process CPU seconds.
* ``ccxt``: ccxt.pro ``watch_ticker`` on ``ticker.<symbol>`` (ccxt's backpack WebSocket client pointed at the
  loopback tick source, markets loaded from the simulator's REST API); records every ticker it returns as a
  delivery, like ``poll``.
* ``ccxt-burst``: ``watch_ticker`` until the ticker shows the burst's last price; output the elapsed time from
  the burst start (the frames' ``E``) to then.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp

from bench.baselines.ticks import burst_price, latency_us, now_us

__all__ = ["main"]

_POLL_S = 0.1


async def _poll(ws_url: str, symbols: list[str], seconds: float) -> dict[str, Any]:
    cache: dict[str, str] = {}
    samples: list[tuple[int, int]] = []
    cpu0 = time.process_time()
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": [f"trade.{s}" for s in symbols]}))

        async def receive() -> None:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(message.data)["data"]
                    cache[data["s"]] = data["p"]

        async def strategy() -> None:
            seen: dict[str, str] = {}
            while True:
                await asyncio.sleep(_POLL_S)
                now = now_us()
                for symbol, price in list(cache.items()):
                    if seen.get(symbol) != price:
                        seen[symbol] = price
                        samples.append((now, now - latency_us(price, now)))

        tasks = [asyncio.create_task(receive()), asyncio.create_task(strategy())]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"deliveries": samples, "cpu_s": time.process_time() - cpu0, "wall_s": seconds}


def _ccxt_exchange(ws_url: str, rest_url: str) -> Any:
    # Imported only in the ccxt modes: it is slow to import.
    import ccxt.pro  # type: ignore[import-untyped]  # noqa: PLC0415

    exchange = ccxt.pro.backpack()
    exchange.urls["api"] = {"public": rest_url, "private": rest_url, "ws": {"public": ws_url, "private": ws_url}}
    return exchange


def _ccxt_price(ticker: dict[str, Any]) -> str:
    info = ticker.get("info") or {}
    raw = info.get("c") if isinstance(info, dict) else None
    return str(raw) if raw is not None else repr(ticker["last"])


async def _ccxt(ws_url: str, rest_url: str, symbol: str, seconds: float) -> dict[str, Any]:
    exchange = _ccxt_exchange(ws_url, rest_url)
    samples: list[tuple[int, int]] = []
    try:
        await exchange.load_markets()
        unified = exchange.markets_by_id[symbol][0]["symbol"]
        await exchange.watch_ticker(unified)
        cpu0 = time.process_time()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ticker = await exchange.watch_ticker(unified)
            now = now_us()
            samples.append((now, now - latency_us(_ccxt_price(ticker), now)))
        cpu = time.process_time() - cpu0
    finally:
        await exchange.close()
    return {"deliveries": samples, "cpu_s": cpu, "wall_s": seconds}


async def _ccxt_burst(ws_url: str, rest_url: str, symbol: str, frames: int, timeout_s: float) -> dict[str, Any]:
    exchange = _ccxt_exchange(ws_url, rest_url)
    last = burst_price(frames - 1)
    try:
        await exchange.load_markets()
        unified = exchange.markets_by_id[symbol][0]["symbol"]
        deadline = time.monotonic() + timeout_s
        tickers = 0
        seen = ""
        while time.monotonic() < deadline:
            try:
                ticker = await asyncio.wait_for(exchange.watch_ticker(unified), timeout=deadline - time.monotonic())
            except TimeoutError:
                break
            tickers += 1
            # A frame handled between two awaits resolves no future: the cached ticker is the latest one.
            ticker = exchange.tickers.get(unified, ticker)
            seen = _ccxt_price(ticker)
            if seen == last:
                end = now_us()
                start = int(ticker["info"]["E"])
                return {"elapsed_us": end - start, "frames": frames, "returned": tickers, "complete": True}
        return {"elapsed_us": None, "frames": frames, "returned": tickers, "complete": False, "seen": seen}
    finally:
        await exchange.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("poll", "ccxt", "ccxt-burst"))
    parser.add_argument("--ws", required=True)
    parser.add_argument("--rest", default="")
    parser.add_argument("--symbols", default="BTC_USDC_PERP", help="comma-separated exchange symbols")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--frames", type=int, default=0)
    args = parser.parse_args()
    symbols = args.symbols.split(",")
    if args.mode == "poll":
        result = asyncio.run(_poll(args.ws, symbols, args.seconds))
    elif args.mode == "ccxt":
        result = asyncio.run(_ccxt(args.ws, args.rest, symbols[0], args.seconds))
    else:
        result = asyncio.run(_ccxt_burst(args.ws, args.rest, symbols[0], args.frames, args.seconds))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
