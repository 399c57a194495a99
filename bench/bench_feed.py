"""Market-data path benchmark: the engine's feed -> cache -> strategy against baselines measured in the same run.

Run: ``PYTHONPATH=. /work/venv/bin/python bench/bench_feed.py [--quick]`` (full run < 3 min, ``--quick`` < 30 s).

The machines are shared and noisy, so every figure is reported next to baselines measured minutes apart in the
same process tree, and the verdicts use ratios where the brief states them. Scenarios:

1. Tick-to-strategy latency at 1,000 frames/s. The tick source (``bench/baselines/tick_source.py``, its own
   process) writes each trade frame with its wall-clock send time in ``E``/``T`` and encoded in the price
   (``bench/baselines/ticks.py``): a consumer that only sees a price (a ``MarketView``, a polled dict, a ccxt
   ticker) can still tell when that price was sent, on the same clock. A tick's latency is the time until the
   strategy first sees that price or a newer one (conflation delivers the newest); the source logs every send
   time, so every tick counts, not only those a consumer happened to see. Consumers:
   (a) engine: ``run_feed`` -> ``run_cache`` -> a strategy stand-in waiting on the ``MarketView``
   conflating channel the cache publishes on (``LatestReceiver.receive``: the newest view, never a queue); (b) the original design: aiohttp WebSocket client -> dict cache,
   strategy polls every 100 ms (asyncio, own process); (c) ccxt.pro ``watch_ticker`` (own process; the same
   source sends ticker frames for ``ticker.<s>``); (d) floor: bare trio-websocket receive + ``decode_frame`` +
   five trio memory-channel hops.
2. Sustained ingest: the source writes N frames as fast as the socket takes them (TCP backpressure sets the
   pace, so the rate is what the consumer sustains); figure = N / (time from burst start to the strategy seeing
   the last frame's price). The final view must show exactly the last frame. A conflation row feeds the engine
   2,000 frames/s while the strategy stand-in awaits 2 ms after each view (so it takes at most ~500 views/s) and
   reports the tick latency it sees: bounded means conflation, growing would mean a queue.
3. Reconnect: the real simulator (in process, fault handle) drops every connection and refuses new ones for a
   while; figure = time from "accepting again" to the first WebSocket price received after it in the view,
   with the engine's feed and cache under the real supervisor (first retry immediate, then backoff).
4. Scaling: 1, 10 and 50 subscribed markets (``trade.<symbol>`` streams of fake symbols, which the tick source
   accepts), 1,000 frames/s in total round-robin; CPU is this process's process time (the engine and the
   strategy stand-in; the source runs in another process) per wall second, plus tick p99.

The engine rows need ``actors.feed.run_feed`` and ``actors.cache.run_cache``; without them they print "n/a".
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
import trio_websocket

from bench.baselines.ticks import burst_price, latency_us, now_us
from engine.backpack.events import Trade
from engine.backpack.frames import decode_frame
from engine.market.config import CacheConfig, FeedConfig
from engine.market.prices import Price
from engine.market.view import MarketView
from engine.runtime import ActorSpec, LatestReceiver, SupervisorConfig, open_latest_channel, run_supervised
from engine.sim.config import SimConfig
from engine.sim.server import SimHandle, serve_simulator

__all__ = ["Row", "main", "per_tick_latencies", "percentile"]

SYMBOL = "BTC_USDC_PERP"
HOPS = 5


# -- measurement helpers ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return float(ordered[rank])


def per_tick_latencies(sent: Sequence[int], deliveries: Sequence[tuple[int, int]]) -> list[int]:
    """Latency of every sent tick: time until the first delivery showing it or a newer tick.

    ``deliveries`` are ``(receive µs, send µs of the newest tick shown)`` in receive order. Only ticks sent
    between the first and the newest tick shown are counted (before, the consumer was still connecting; after,
    the measurement had ended), so every counted tick has a latency.
    """
    if not deliveries:
        return []
    first_shown = min(s for _, s in deliveries)
    last_shown = max(s for _, s in deliveries)
    ticks = sorted(s for s in sent if first_shown <= s <= last_shown)
    out: list[int] = []
    i = 0
    newest = -1
    for recv, shown in deliveries:
        newest = max(newest, shown)
        while i < len(ticks) and ticks[i] <= newest:
            out.append(recv - ticks[i])
            i += 1
    return out


@attrs.frozen(kw_only=True)
class Latency:
    p50_us: float
    p99_us: float
    ticks: int
    deliveries: int
    cpu_s: float = math.nan
    wall_s: float = math.nan


def summarize(sent: Sequence[int], deliveries: Sequence[tuple[int, int]], *, cpu_s: float = math.nan,
              wall_s: float = math.nan) -> Latency:
    lat = per_tick_latencies(sent, deliveries)
    return Latency(p50_us=percentile(lat, 50), p99_us=percentile(lat, 99), ticks=len(lat),
                   deliveries=len(deliveries), cpu_s=cpu_s, wall_s=wall_s)


@attrs.frozen(kw_only=True)
class Row:
    """One line of the result table."""

    scenario: str
    figure: str
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def _ms(us: float) -> str:
    return "n/a" if math.isnan(us) else f"{us / 1000:.3f} ms"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


# -- the tick source -------------------------------------------------------------------------------------------


@attrs.define
class Source:
    ws: str
    rest: str
    sent: list[int] = attrs.field(factory=list)


@asynccontextmanager
async def tick_source(*, rate: int = 1000, burst: int = 0, rest: bool = True) -> AsyncIterator[Source]:
    """Run ``bench/baselines/tick_source.py`` in a subprocess; after the block ``sent`` holds its send times."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "sent.json"
        args = [sys.executable, "-m", "bench.baselines.tick_source", "--rate", str(rate), "--burst", str(burst),
                "--log", str(log), *(["--rest"] if rest else [])]
        proc = await trio.lowlevel.open_process(args, stdin=-1, stdout=-1)
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            buf = b""
            with trio.fail_after(30):
                while b"\n" not in buf:
                    chunk = await proc.stdout.receive_some(4096)
                    if not chunk:
                        raise RuntimeError("tick source exited before it was ready")
                    buf += chunk
            info = json.loads(buf.split(b"\n", 1)[0])
            source = Source(ws=info["ws"], rest=info["rest"])
            yield source
        finally:
            with trio.move_on_after(10, shield=True):
                await proc.stdin.aclose()
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
        if log.exists():
            source.sent = json.loads(log.read_text())


async def _run_child(mode: str, source: Source, *extra: str, timeout_s: float) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.baselines.asyncio_clients", mode, "--ws", source.ws, "--rest", source.rest,
            *extra]
    with trio.fail_after(timeout_s):
        done = await trio.run_process(args, capture_stdout=True, capture_stderr=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} baseline failed: {done.stderr.decode()[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


# -- consumers -------------------------------------------------------------------------------------------------


def _subscribe(streams: Sequence[str]) -> str:
    return json.dumps({"method": "SUBSCRIBE", "params": list(streams)})


@attrs.frozen(kw_only=True)
class Raw:
    """What a consumer recorded; summarized once the source has written its send log."""

    deliveries: list[tuple[int, int]]
    cpu_s: float
    wall_s: float

    def summary(self, sent: Sequence[int]) -> Latency:
        return summarize(sent, self.deliveries, cpu_s=self.cpu_s, wall_s=self.wall_s)


async def floor_latency(source: Source, seconds: float) -> Raw:
    """(d) bare trio-websocket receive + decode_frame + five memory-channel hops."""
    deliveries: list[tuple[int, int]] = []
    cpu0 = time.process_time()
    async with trio_websocket.open_websocket_url(source.ws) as ws:
        await ws.send_message(_subscribe([f"trade.{SYMBOL}"]))
        sends, receives = zip(*(trio.open_memory_channel[Trade](64) for _ in range(HOPS)), strict=True)

        async def reader() -> None:
            async with sends[0]:
                while True:
                    event = decode_frame(await ws.get_message())
                    if isinstance(event, Trade):
                        await sends[0].send(event)

        async def hop(rx: trio.MemoryReceiveChannel[Trade], tx: trio.MemorySendChannel[Trade]) -> None:
            async with rx, tx:
                async for event in rx:
                    await tx.send(event)

        async def consumer(rx: trio.MemoryReceiveChannel[Trade]) -> None:
            async with rx:
                async for event in rx:
                    recv = now_us()
                    deliveries.append((recv, recv - latency_us(event.price, recv)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            for k in range(HOPS - 1):
                nursery.start_soon(hop, receives[k], sends[k + 1])
            nursery.start_soon(consumer, receives[HOPS - 1])
            await trio.sleep(seconds)
            nursery.cancel_scope.cancel(reason="measured")
    return Raw(deliveries=deliveries, cpu_s=time.process_time() - cpu0, wall_s=seconds)


async def floor_burst(source: Source, frames: int, timeout_s: float) -> float:
    """Frames/s of a bare trio-websocket receive + json.loads loop until the burst's last frame."""
    last = burst_price(frames - 1)
    async with trio_websocket.open_websocket_url(source.ws, message_queue_size=64) as ws:
        await ws.send_message(_subscribe([f"trade.{SYMBOL}"]))
        with trio.fail_after(timeout_s):
            while True:
                data = json.loads(await ws.get_message())["data"]
                if data["p"] == last:
                    return frames / ((now_us() - int(data["E"])) / 1e6)


# -- the engine path -------------------------------------------------------------------------------------------


def _engine_available() -> str | None:
    """None when the feed and cache actors can be imported, else why not."""
    try:
        import actors.cache  # noqa: F401, PLC0415
        import actors.feed  # noqa: F401, PLC0415
    except ImportError as exc:
        return f"engine actors not on this branch ({exc})"
    return None


def _engine_configs() -> tuple[FeedConfig, CacheConfig]:
    # The tick source speaks trade frames only: subscribe just those, and keep the cache from polling REST for
    # the kinds it will never get over the WebSocket (mark, book mid), so the figures are the WebSocket path.
    feed_cfg = FeedConfig(auto_subscribe_ticker=False, auto_subscribe_depth=False, subscribe_trades=True,
                          subscribe_mark_price=False, subscribe_liquidations=False, subscribe_private=False,
                          kline_intervals=())
    return feed_cfg, CacheConfig(rest_poll_interval_s=3600.0)


@asynccontextmanager
async def engine_path(source_ws: str, rest: str,
                      symbols: Sequence[str]) -> AsyncIterator[LatestReceiver[MarketView]]:
    """Run ``run_feed`` -> ``run_cache`` against ``source_ws``; yields the receive end of the view channel."""
    from actors.cache import run_cache  # noqa: PLC0415
    from actors.feed import run_feed  # noqa: PLC0415

    feed_cfg, cache_cfg = _engine_configs()
    view_tx, view_rx = open_latest_channel[MarketView]()
    tx, rx = trio.open_memory_channel[Any](256)
    async with httpx.AsyncClient(base_url=rest) as http, trio.open_nursery() as nursery:
        await nursery.start(partial(run_cache, cache_cfg, inbox=rx, view_out=view_tx, rest=http,
                                    symbols=tuple(symbols), now_ms=_wall_ms, intervals=()))
        await nursery.start(partial(run_feed, feed_cfg, ws_url=source_ws, rest=http, symbols=tuple(symbols),
                                    out=tx, now_ms=_wall_ms))
        yield view_rx
        nursery.cancel_scope.cancel(reason="benchmark scenario done")


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


async def strategy_standin(views: LatestReceiver[MarketView], deliveries: list[tuple[int, int]], *,
                           work_s: float = 0.0, stop: Callable[[Decimal], bool] | None = None) -> MarketView:
    """Wait for each new MarketView; record (receive µs, send µs of the newest changed last price).

    ``work_s`` simulates a strategy that is busy that long per view; ``stop`` ends the loop on a price and
    returns that view.
    """
    last: dict[str, Decimal] = {}
    while True:
        current = await views.receive()
        recv = now_us()
        newest: int | None = None
        for market in current.markets:
            quote = market.last
            if isinstance(quote, Price) and last.get(market.symbol) != quote.value:
                last[market.symbol] = quote.value
                if stop is not None and stop(quote.value):
                    return current
                shown = recv - latency_us(quote.value, recv)
                newest = shown if newest is None else max(newest, shown)
        if newest is not None:
            deliveries.append((recv, newest))
        if work_s:
            await trio.sleep(work_s)


async def engine_latency(source: Source, seconds: float, symbols: Sequence[str], *,
                         work_s: float = 0.0) -> Raw:
    """(a) feed -> cache -> strategy stand-in."""
    deliveries: list[tuple[int, int]] = []
    async with engine_path(source.ws, source.rest, symbols) as view, trio.open_nursery() as nursery:
        nursery.start_soon(partial(strategy_standin, view, deliveries, work_s=work_s))
        await trio.sleep(0.3)  # warm-up: connect, first views
        deliveries.clear()
        cpu0, wall0 = time.process_time(), trio.current_time()
        await trio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, trio.current_time() - wall0
        nursery.cancel_scope.cancel(reason="measured")
    return Raw(deliveries=deliveries, cpu_s=cpu, wall_s=wall)


async def engine_burst(source: Source, frames: int, timeout_s: float) -> tuple[float, bool]:
    """Frames/s through feed -> cache -> strategy until the view shows the last frame; and whether it does."""
    last = Decimal(burst_price(frames - 1))
    deliveries: list[tuple[int, int]] = []
    async with engine_path(source.ws, source.rest, [SYMBOL]) as view:
        with trio.fail_after(timeout_s):
            final = await strategy_standin(view, deliveries, stop=lambda price: price == last)
        end = now_us()
        # Anything published after the last frame must still show it (nothing newer exists to show).
        await trio.sleep(0.05)
        with suppress(trio.WouldBlock):
            final = view.receive_nowait()
        quote = final.market(SYMBOL).last
        exact = isinstance(quote, Price) and quote.value == last
        start_ms = quote.exchange_ms if isinstance(quote, Price) and quote.exchange_ms else None
    if start_ms is None:
        raise RuntimeError("the final view carries no exchange time")
    return frames / ((end - start_ms * 1000) / 1e6), exact


async def engine_reconnect(refuse_s: float, rounds: int) -> list[float]:
    """Seconds from the simulator accepting again to the first fresh WebSocket price in the view, per round."""
    from actors.cache import run_cache  # noqa: PLC0415
    from actors.feed import run_feed  # noqa: PLC0415

    feed_cfg = FeedConfig(auto_subscribe_ticker=False, auto_subscribe_depth=True, subscribe_trades=True,
                          subscribe_mark_price=False, subscribe_liquidations=False, subscribe_private=False,
                          kline_intervals=())
    view_tx, view = open_latest_channel[MarketView]()
    tx, rx = trio.open_memory_channel[Any](256)

    def fresh_ws_after(current: MarketView, moment: float) -> bool:
        # The book top (bookTicker / local book) or the last trade, received over the WebSocket after ``moment``.
        state = current.market(SYMBOL)
        for quote in (state.last, state.mid):
            if isinstance(quote, Price) and quote.source == "ws" and current.as_of_s - quote.age_s >= moment:
                return True
        return False

    results: list[float] = []
    async with trio.open_nursery() as nursery:
        sim: SimHandle = await nursery.start(serve_simulator, SimConfig(port=0, rate_limits=False, speed=10.0,
                                                                          step_interval_s=0.02))
        async with httpx.AsyncClient(base_url=sim.rest_url) as http:

            async def feed(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                await run_feed(feed_cfg, ws_url=sim.ws_url, rest=http, symbols=(SYMBOL,), out=tx.clone(),
                               now_ms=_wall_ms, task_status=task_status)

            async def cache(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                await run_cache(CacheConfig(), inbox=rx.clone(), view_out=view_tx.clone(), rest=http,
                                symbols=(SYMBOL,), now_ms=_wall_ms, intervals=(), task_status=task_status)

            # The engine's own restart policy ([supervisor] defaults: first retry immediate, then full jitter under
            # 0.1 s doubling). Each round is a first failure after a healthy run (reset_after_s below the pause
            # between rounds), so its first retry is immediate.
            policy = attrs.evolve(SupervisorConfig().to_policy(), max_restarts=1000, reset_after_s=0.5)
            specs = [ActorSpec(name="cache", run=cache, policy=policy),
                     ActorSpec(name="feed", run=feed, policy=policy, depends_on=("cache",))]
            nursery.start_soon(run_supervised, specs)
            with trio.fail_after(20):
                while not fresh_ws_after(await view.receive(), 0.0):
                    pass
            for round_no in range(rounds):
                if round_no:
                    await trio.sleep(1.0)
                if refuse_s:
                    sim.faults.refuse_connections(refuse_s)
                sim.faults.drop_connections()
                accepting = trio.current_time() + refuse_s
                with trio.fail_after(refuse_s + 20):
                    while not fresh_ws_after(await view.receive(), accepting):
                        pass
                results.append(trio.current_time() - accepting)
        nursery.cancel_scope.cancel(reason="measured")
    return results


# -- the run ---------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Plan:
    seconds: float
    burst: int
    rounds: int
    refusals: tuple[float, ...]
    markets: tuple[int, ...]


async def _guard(rows: list[Row], name: str, body: Callable[[], Awaitable[None]]) -> None:
    """Run one scenario; a failure becomes a row saying so (never a made-up figure)."""
    try:
        await body()
    except Exception as exc:  # noqa: BLE001  # a benchmark reports a broken scenario and goes on
        rows.append(Row(scenario=name, figure="FAILED", verdict=f"{type(exc).__name__}: {str(exc)[:150]}"))


async def run(plan: Plan) -> list[Row]:
    rows: list[Row] = []
    missing = _engine_available()
    results: dict[str, Latency] = {}

    async def latency_rows() -> None:
        async with tick_source(rate=1000, rest=False) as src:
            raw = await floor_latency(src, plan.seconds)
        results["floor"] = raw.summary(src.sent)
        async with tick_source(rate=1000, rest=False) as src:
            r = await _run_child("poll", src, "--seconds", str(plan.seconds), timeout_s=plan.seconds + 30)
        results["poll"] = summarize(src.sent, [tuple(d) for d in r["deliveries"]], cpu_s=r["cpu_s"],
                                    wall_s=r["wall_s"])
        async with tick_source(rate=1000) as src:
            r = await _run_child("ccxt", src, "--seconds", str(plan.seconds), timeout_s=plan.seconds + 30)
        results["ccxt"] = summarize(src.sent, [tuple(d) for d in r["deliveries"]], cpu_s=r["cpu_s"],
                                    wall_s=r["wall_s"])
        if missing is None:
            async with tick_source(rate=1000) as src:
                raw = await engine_latency(src, plan.seconds, [SYMBOL])
            results["engine"] = raw.summary(src.sent)

    await _guard(rows, "1. latency", latency_rows)
    floor, poll, ccxt, eng = (results.get(k) for k in ("floor", "poll", "ccxt", "engine"))
    for key, label in (("floor", "(d) floor: trio-websocket + decode_frame + 5 hops"),
                       ("poll", "(b) baseline: aiohttp -> dict, strategy polls 100 ms"),
                       ("ccxt", "(c) ccxt.pro watch_ticker")):
        lat = results.get(key)
        if lat is not None:
            rows.append(Row(scenario=f"1. tick latency p50/p99 @1k/s {label}",
                            figure=f"{_ms(lat.p50_us)} / {_ms(lat.p99_us)}",
                            verdict=f"{lat.ticks} ticks, {lat.deliveries} deliveries"))
    if eng is None:
        rows.append(Row(scenario="1. tick latency p50/p99 @1k/s (a) engine feed -> cache -> strategy",
                        figure="n/a", verdict=missing or "see FAILED row"))
    else:
        rows.append(Row(scenario="1. tick latency p50/p99 @1k/s (a) engine feed -> cache -> strategy",
                        figure=f"{_ms(eng.p50_us)} / {_ms(eng.p99_us)}", target="p99 <= 1 ms",
                        verdict=f"{_verdict(eng.p99_us <= 1000)}; {eng.ticks} ticks, {eng.deliveries} views"))
        if poll is not None:
            ratio = poll.p99_us / eng.p99_us
            rows.append(Row(scenario="1. engine vs polling baseline (p99)", figure="",
                            ratio=f"{ratio:.1f}x better", target=">= 100x", verdict=_verdict(ratio >= 100)))
        if floor is not None:
            ratio = eng.p99_us / floor.p99_us
            rows.append(Row(scenario="1. engine vs bare trio floor (p99)", figure="", ratio=f"{ratio:.2f}x",
                            target="<= 3x", verdict=_verdict(ratio <= 3)))
        if ccxt is not None:
            rows.append(Row(scenario="1. engine vs ccxt.pro (p99)", figure="",
                            ratio=f"engine = {eng.p99_us / ccxt.p99_us:.2f}x ccxt's p99"))

    rates: dict[str, float] = {}

    async def burst_rows() -> None:
        async with tick_source(burst=plan.burst, rest=False) as src:
            rates["floor"] = await floor_burst(src, plan.burst, timeout_s=60)
        async with tick_source(burst=plan.burst) as src:
            r = await _run_child("ccxt-burst", src, "--frames", str(plan.burst), "--seconds", "60", timeout_s=90)
        if not r["complete"]:
            raise RuntimeError(f"ccxt never showed the last frame ({r['returned']} tickers returned)")
        rates["ccxt"] = plan.burst / (r["elapsed_us"] / 1e6)
        if missing is None:
            async with tick_source(burst=plan.burst) as src:
                rates["engine"], exact = await engine_burst(src, plan.burst, timeout_s=60)
            rates["exact"] = float(exact)

    await _guard(rows, "2. sustained ingest", burst_rows)
    n = f"{plan.burst:,} frames"
    if "floor" in rates:
        rows.append(Row(scenario=f"2. ingest, bare trio-websocket + json.loads ({n})",
                        figure=f"{rates['floor']:,.0f} frames/s"))
    if "ccxt" in rates:
        rows.append(Row(scenario=f"2. ingest, ccxt.pro watch_ticker ({n})", figure=f"{rates['ccxt']:,.0f} frames/s"))
    if "engine" in rates:
        ratio_floor = rates["engine"] / rates["floor"]
        rows.append(Row(scenario=f"2. ingest, engine feed -> cache -> strategy ({n})",
                        figure=f"{rates['engine']:,.0f} frames/s",
                        ratio=f"{ratio_floor:.2f}x bare, {rates['engine'] / rates['ccxt']:.2f}x ccxt",
                        verdict=f"final view == last frame: {'yes' if rates['exact'] else 'NO'}"))
    elif missing is not None:
        rows.append(Row(scenario="2. ingest, engine", figure="n/a", verdict=missing))

    if missing is None:
        async def conflation_row() -> None:
            async with tick_source(rate=2000) as src:
                raw = await engine_latency(src, plan.seconds, [SYMBOL], work_s=0.002)
            lat = raw.summary(src.sent)
            rows.append(Row(scenario="2. conflation: 2k/s in, strategy awaits 2 ms per view",
                            figure=f"p50 {_ms(lat.p50_us)} / p99 {_ms(lat.p99_us)}",
                            ratio=f"{lat.ticks / max(1, lat.deliveries):.1f} ticks per view",
                            target="bounded (no backlog)",
                            verdict=f"{_verdict(lat.p99_us < 50_000)}; {lat.deliveries} views"))

        await _guard(rows, "2. conflation", conflation_row)

        async def reconnect_rows() -> None:
            for refuse_s in plan.refusals:
                got = await engine_reconnect(refuse_s, plan.rounds)
                worst = max(got)
                what = "drop, accepting at once" if not refuse_s else f"drop + refuse {refuse_s:g} s"
                rows.append(Row(scenario=f"3. reconnect to fresh price ({what})",
                                figure=f"median {percentile(got, 50) * 1000:.1f} ms, max {worst * 1000:.1f} ms",
                                target="< 100 ms", verdict=f"{_verdict(worst < 0.1)}; {len(got)} rounds"))

        await _guard(rows, "3. reconnect", reconnect_rows)

        async def scaling_rows() -> None:
            base: Latency | None = None
            for count in plan.markets:
                symbols = [SYMBOL] + [f"FAKE{i:02d}_USDC" for i in range(1, count)]
                async with tick_source(rate=1000) as src:
                    raw = await engine_latency(src, plan.seconds, symbols)
                lat = raw.summary(src.sent)
                base = base or lat
                cpu = lat.cpu_s / lat.wall_s
                rows.append(Row(scenario=f"4. scaling, {count} market(s), 1k frames/s total",
                                figure=f"CPU {cpu * 100:.1f}%, p99 {_ms(lat.p99_us)}",
                                ratio=f"CPU {cpu / (base.cpu_s / base.wall_s):.2f}x, p99 {lat.p99_us / base.p99_us:.2f}x"
                                      " vs 1 market",
                                verdict=f"{lat.ticks} ticks, {lat.deliveries} views"))

        await _guard(rows, "4. scaling", scaling_rows)
    else:
        rows.append(Row(scenario="3./4. reconnect, scaling", figure="n/a", verdict=missing))
    return rows


def print_table(rows: Sequence[Row]) -> None:
    headers = ("scenario", "figure", "ratio", "target", "verdict / notes")
    cells = [(r.scenario, r.figure, r.ratio, r.target, r.verdict) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers[:-1])]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(headers[:-1], widths, strict=True)) + "  " + headers[-1]
    print(line)
    print("-" * len(line))
    for c in cells:
        print("  ".join(f"{v:<{w}}" for v, w in zip(c[:-1], widths, strict=True)) + "  " + c[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (< 30 s)")
    parser.add_argument("--verbose", action="store_true", help="show the engine's log (reconnects are logged)")
    args = parser.parse_args()
    # The reconnect scenario makes the supervisor log every (expected) failure with its traceback.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL)
    if args.quick:
        plan = Plan(seconds=0.5, burst=2000, rounds=1, refusals=(0.0,), markets=(1, 10))
    else:
        plan = Plan(seconds=4.0, burst=30_000, rounds=3, refusals=(0.0, 0.3), markets=(1, 10, 50))
    started = time.monotonic()
    rows = trio.run(run, plan)
    print_table(rows)
    print(f"total {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
