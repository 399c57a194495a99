"""The cache actor: the one place that knows the latest state of every market, published as ``MarketView``.

Owns the price board, local-book summaries, funding, candles, liquidation clusters and data-quality counters
of its markets, plus the REST fallback poller and the kline backfill. Invariants:

* Every feed event is folded in by one task, and a new ``MarketView`` is published on the conflating
  channel before that task next blocks, so the latest view reflects every event taken, a slow strategy
  always sees the latest state and never a queue. Events already waiting (and those the feed hands over in
  the next scheduling round) are folded into one view; during a flood the task publishes and naps
  ``_FLOOD_NAP_S`` between chunks instead of waking per event.
* Per view, work is proportional to what a view must show: the book's spread and imbalance are computed per
  book update, a never-seen price's Stale status is one reused object, clusters are skipped for markets
  without liquidations, and the quality snapshot is rebuilt at once when anything but a message count
  changed (errors, gaps, resyncs, stale flags, connections) and otherwise at most every
  ``_QUALITY_REFRESH_S`` (its ``as_of_s`` says when). Prices, books and funding are rebuilt per view because
  their ages are relative to the view's ``as_of_s``, which consumers (risk, metrics) rely on.
* A view is also republished the moment any price crosses a freshness limit (live -> cached -> rest -> Stale),
  using a cancel-scope deadline: every recorded value can only move it earlier (O(1) per event), and when it
  fires the next one is found by a full scan, so a view never claims a fresher price than it has.
* When a WebSocket price is not live, REST is polled for it (ticker, markPrices, depth) at most every
  ``rest_poll_interval_s`` and within ``rest_max_requests_per_min``; those values are tagged ``rest``. Polling
  for a kind stops as soon as the WebSocket value is live again.
* Klines are backfilled from REST on start, after every (re)connect and whenever a bar closes with a gap
  behind it, within ``kline_backfill_max_per_min`` (the exchange allows 30/min on history).
* REST failures are counted and retried at the next poll; they never end the actor (its state would be lost).
* Candle closing uses exchange time (the newest event time seen), because the simulator may run faster than
  the wall clock; before any event arrives the injected wall clock stands in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import NoReturn

import attrs
import httpx
import trio

from actors.feed import rest_get
from engine.backpack.events import (
    BalanceUpdate,
    BookTicker,
    Kline,
    Liquidation,
    MarkPrice,
    OpenInterest,
    OrderUpdate,
    PositionUpdate,
    Ticker,
    Trade,
    WsError,
)
from engine.backpack.responses import decode_depth, decode_klines, decode_mark_prices, decode_ticker
from engine.errors import ApiError, ExchangeUnavailable, InvariantViolation, ProtocolError
from engine.market.candles import Candle, CandleBook, interval_ms
from engine.market.clusters import Burst, Cluster, ClusterMap
from engine.market.config import CANDLE_INTERVALS, CacheConfig
from engine.market.feed_events import (
    BookInvalid,
    BookState,
    DecodeFailed,
    FeedEvent,
    FeedStatus,
    Received,
    StreamStalled,
)
from engine.market.prices import PRICE_KINDS, PriceBoard, PriceKind, PriceLimits, Source
from engine.market.quality import QualityStats, QualityTracker
from engine.market.streams import watch_key
from engine.market.view import BookSummary, Funding, MarketState, MarketView
from engine.runtime.channels import LatestSender

__all__ = ["run_cache"]

log = logging.getLogger("engine.cache")

_CLUSTERS_IN_VIEW = 10
_EPS = 1e-6
_QUALITY_REFRESH_S = 0.25
_DRAIN_MAX = 512  # events folded per drain at most, so a flood still publishes regularly
_FLOOD_NAP_S = 0.001  # while events keep coming, they are folded and published in chunks this far apart
_FLOOD_MIN = 5  # events per nap that keep the flood mode on (5 per ms: above the 1k-4k/s of a busy market)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@attrs.define
class _Book:
    summary_source: str  # "ws" or "rest"
    best_bid: Decimal
    best_ask: Decimal
    bid_size: Decimal
    ask_size: Decimal
    bid_depth: Decimal
    ask_depth: Decimal
    depth_bps: Decimal
    update_id: int
    recv_s: float
    spread_bps: Decimal = attrs.field(init=False)
    imbalance: Decimal | None = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        # Computed once per book update rather than once per published view (they do not depend on time).
        self.spread_bps = (self.best_ask - self.best_bid) / ((self.best_ask + self.best_bid) / 2) * 10000
        total = self.bid_depth + self.ask_depth
        self.imbalance = None if total == 0 else (self.bid_depth - self.ask_depth) / total


@attrs.define
class _Funding:
    mark: Decimal
    index: Decimal | None
    rate: Decimal | None
    next_ms: int | None
    source: str
    recv_s: float


class _Limiter:
    """Spaces requests evenly so that at most ``per_min`` start in any minute."""

    def __init__(self, per_min: int) -> None:
        self._spacing = 60.0 / per_min
        self._next = -math.inf

    async def acquire(self) -> None:
        start = max(trio.current_time(), self._next)
        self._next = start + self._spacing
        await trio.sleep_until(start)


class _Cache:
    def __init__(self, cfg: CacheConfig, symbols: Sequence[str], intervals: Sequence[str],
                 client: httpx.AsyncClient, view_out: LatestSender[MarketView], now_ms: Callable[[], int]) -> None:
        self.cfg = cfg
        self.symbols = tuple(symbols)
        self.client = client
        self.view_out = view_out
        self.now_ms = now_ms
        price = PriceLimits(ws_fresh_s=cfg.ws_fresh_s, cache_max_age_s=cfg.cache_max_age_s,
                            rest_max_age_s=cfg.rest_max_age_s)
        book = PriceLimits(ws_fresh_s=cfg.book_fresh_s, cache_max_age_s=max(cfg.book_fresh_s, cfg.cache_max_age_s),
                           rest_max_age_s=cfg.rest_max_age_s)
        self.limits: dict[PriceKind, PriceLimits] = {"last": price, "mark": price, "mid": book}
        self.board = PriceBoard(self.limits)
        self.books: dict[str, _Book | None] = dict.fromkeys(symbols)
        self.funding: dict[str, _Funding | None] = dict.fromkeys(symbols)
        self.candles = {s: CandleBook(intervals, cfg.candle_history) for s in symbols}
        self.clusters = {s: ClusterMap(bucket_size=cfg.cluster_bucket, half_life_s=cfg.cluster_half_life_s,
                                       max_buckets=cfg.cluster_max_buckets, window_s=cfg.burst_window_s,
                                       threshold=cfg.burst_threshold) for s in symbols}
        self.intervals = tuple(intervals)
        self.cluster_versions: dict[str, int] = {}
        self.closed_memo: dict[tuple[str, str], tuple[int, int, tuple[Candle, ...]]] = {}
        self.quality = QualityTracker()
        self.quality_view: QualityStats | None = None
        self.quality_seen = -1
        self.cluster_memo: dict[str, tuple[int, tuple[Cluster, ...], Burst | None]] = {}
        self.market_ms: int | None = None
        self.version = 0
        self.timer: trio.CancelScope | None = None
        self.backfill_wanted = trio.Event()
        self.backfill_wanted.set()
        self.attempted: set[tuple[str, str, int, int]] = set()
        self.rest_limiter = _Limiter(cfg.rest_max_requests_per_min)
        self.history_limiter = _Limiter(cfg.kline_backfill_max_per_min)

    # -- time -----------------------------------------------------------------------------------------------
    def market_now_ms(self) -> int:
        return self.market_ms if self.market_ms is not None else self.now_ms()

    def saw_exchange_time(self, us: int | None) -> None:
        if us is None:
            return
        ms = us // 1000
        if self.market_ms is None or ms > self.market_ms:
            if self.market_ms is not None and ms // 60_000 != self.market_ms // 60_000:
                self.backfill_wanted.set()  # a 1m bar just closed: look for a gap behind it
            self.market_ms = ms

    # -- recording (every price and book goes through here, so the transition timer can only move earlier) --
    def wake_at(self, at: float) -> None:
        """Make sure the transition timer fires no later than ``at`` (a spurious early wake only republishes)."""
        timer = self.timer
        if timer is not None and at + _EPS < timer.deadline:
            timer.deadline = at + _EPS

    def record(self, symbol: str, kind: PriceKind, *, value: Decimal, source: Source, recv_s: float,
               exchange_ms: int | None = None) -> None:
        if self.board.record(symbol, kind, value=value, source=source, recv_s=recv_s, exchange_ms=exchange_ms):
            limits = self.limits[kind]
            self.wake_at(recv_s + (limits.ws_fresh_s if source == "ws" else limits.rest_max_age_s))

    def set_book(self, symbol: str, book: _Book) -> None:
        self.books[symbol] = book
        self.wake_at(book.recv_s + (self.cfg.book_fresh_s if book.summary_source == "ws" else self.cfg.rest_max_age_s))

    # -- folding events -------------------------------------------------------------------------------------
    def fold(self, ev: FeedEvent) -> None:
        if ev.__class__ is Received:
            assert isinstance(ev, Received)
            inner = ev.event
            cls = inner.__class__
            # Fast paths for the hottest events of a tracked market: same effect as fold_received, without its
            # generic dispatch (these streams are never klines, so the stream is its own watch key).
            if cls is Trade:
                assert isinstance(inner, Trade)
                if inner.symbol in self.books:
                    self.hot(ev, inner.stream, inner.event_time_us)
                    self.record(inner.symbol, "last", value=inner.price, source="ws", recv_s=ev.recv_s,
                                exchange_ms=inner.engine_time_us // 1000)
                    return
            elif cls is BookTicker:
                assert isinstance(inner, BookTicker)
                if inner.symbol in self.books:
                    self.hot(ev, inner.stream, inner.event_time_us)
                    bid, ask = inner.bid_price, inner.ask_price
                    if bid is not None and ask is not None and bid < ask:
                        self.record(inner.symbol, "mid", value=(bid + ask) / 2, source="ws", recv_s=ev.recv_s,
                                    exchange_ms=inner.engine_time_us // 1000)
                    return
            elif cls is Ticker:
                assert isinstance(inner, Ticker)
                if inner.symbol in self.books:
                    self.hot(ev, inner.stream, inner.event_time_us)
                    self.record(inner.symbol, "last", value=inner.last_price, source="ws", recv_s=ev.recv_s,
                                exchange_ms=inner.event_time_us // 1000)
                    return
            self.fold_received(ev)
            return
        match ev:
            case Received():
                self.fold_received(ev)
            case BookState():
                held = self.books.get(ev.symbol)
                if ev.symbol not in self.books or (held is not None and held.summary_source == "ws"
                                                   and ev.update_id < held.update_id):
                    return
                self.quality.message(f"depth.{ev.symbol}", now_s=ev.recv_s)
                self.saw_exchange_time(ev.engine_time_us)
                if ev.bids and ev.asks:
                    (bid, bid_size), (ask, ask_size) = ev.bids[0], ev.asks[0]
                    self.set_book(ev.symbol, _Book(
                        summary_source="ws", best_bid=bid, best_ask=ask, bid_size=bid_size, ask_size=ask_size,
                        bid_depth=ev.bid_depth, ask_depth=ev.ask_depth, depth_bps=ev.depth_bps,
                        update_id=ev.update_id, recv_s=ev.recv_s))
                    self.record(ev.symbol, "mid", value=(bid + ask) / 2, source="ws", recv_s=ev.recv_s,
                                      exchange_ms=None if ev.engine_time_us is None else ev.engine_time_us // 1000)
            case BookInvalid():
                self.books[ev.symbol] = None
                stream = f"depth.{ev.symbol}"
                self.quality.resync(stream)
                if ev.gap:
                    self.quality.gap(stream)
            case FeedStatus(state="connected"):
                self.quality.connected(now_s=ev.recv_s)
                self.backfill_wanted.set()
            case FeedStatus():
                self.quality.disconnected(now_s=ev.recv_s)
            case DecodeFailed():
                self.quality.decode_error(ev.stream, ev.reason)
            case StreamStalled():
                self.quality.set_stale(ev.stream, True, now_s=ev.recv_s)
            case _:
                raise InvariantViolation(f"cache: unknown feed event {ev!r}")

    def hot(self, r: Received, stream: str, event_time_us: int) -> None:
        self.quality.message(stream, now_s=r.recv_s, latency_ms=r.recv_ms - event_time_us / 1000, live=True)
        ms = event_time_us // 1000
        if self.market_ms is None or ms > self.market_ms:
            self.saw_exchange_time(event_time_us)

    def fold_received(self, r: Received) -> None:
        ev = r.event
        if isinstance(ev, WsError):
            self.quality.decode_error("error", f"error frame {ev.code}")
            return
        key = watch_key(ev.stream)
        latency = None if ev.event_time_us is None else r.recv_ms - ev.event_time_us / 1000
        self.quality.message(key, now_s=r.recv_s, latency_ms=latency, live=True)
        if isinstance(ev, OrderUpdate | PositionUpdate | BalanceUpdate):
            return  # account streams belong to the orders/risk actors; counted here only
        tracked = getattr(ev, "symbol", None) in self.books
        if not isinstance(ev, Liquidation):
            self.saw_exchange_time(ev.event_time_us)
        match ev:
            case Ticker() if tracked:
                self.record(ev.symbol, "last", value=ev.last_price, source="ws", recv_s=r.recv_s,
                                  exchange_ms=ev.event_time_us // 1000)
            case Trade() if tracked:
                self.record(ev.symbol, "last", value=ev.price, source="ws", recv_s=r.recv_s,
                                  exchange_ms=ev.engine_time_us // 1000)
            case BookTicker() if tracked:
                if ev.bid_price is not None and ev.ask_price is not None and ev.bid_price < ev.ask_price:
                    self.record(ev.symbol, "mid", value=(ev.bid_price + ev.ask_price) / 2, source="ws",
                                      recv_s=r.recv_s, exchange_ms=ev.engine_time_us // 1000)
            case MarkPrice() if tracked:
                self.record(ev.symbol, "mark", value=ev.mark_price, source="ws", recv_s=r.recv_s,
                                  exchange_ms=ev.event_time_us // 1000)
                self.funding[ev.symbol] = _Funding(
                    mark=ev.mark_price, index=ev.index_price, rate=ev.funding_rate,
                    next_ms=None if ev.next_funding_time_us is None else ev.next_funding_time_us // 1000,
                    source="ws", recv_s=r.recv_s)
            case Kline() if tracked:
                self.fold_kline(ev)
            case Liquidation() if tracked:
                self.clusters[ev.symbol].add(price=ev.price, quantity=ev.quantity, side=ev.side.value,
                                             ts_ms=ev.event_time_us // 1000)
            case Ticker() | Trade() | BookTicker() | MarkPrice() | Kline() | Liquidation() | OpenInterest():
                pass  # another market's data, or a stream the view does not carry

    def fold_kline(self, ev: Kline) -> None:
        book = self.candles[ev.symbol]
        if ev.interval not in book.intervals:
            return
        start, end = _ms(ev.start), _ms(ev.end)
        if ev.open is None or ev.high is None or ev.low is None or ev.close is None:
            if ev.closed:
                book.series(ev.interval).mark_empty(start)
            return
        try:
            book.apply(Candle(interval=ev.interval, start_ms=start, end_ms=end, open=ev.open, high=ev.high,
                              low=ev.low, close=ev.close, volume=ev.volume, trades=ev.trades, final=ev.closed,
                              event_ms=ev.event_time_us // 1000))
        except ValueError:
            self.quality.decode_error(f"kline.{ev.interval}", "misaligned bar")

    # -- publishing -----------------------------------------------------------------------------------------
    def closed_candles(self, symbol: str, now_ms: int) -> tuple[tuple[str, tuple[Candle, ...]], ...]:
        out = []
        for interval in self.candles[symbol].intervals:
            series = self.candles[symbol].series(interval)
            bucket = now_ms // interval_ms(interval)
            memo = self.closed_memo.get((symbol, interval))
            if memo is None or memo[0] != series.version or memo[1] != bucket:
                memo = (series.version, bucket, series.closed(now_ms))
                self.closed_memo[(symbol, interval)] = memo
            out.append((interval, memo[2]))
        return tuple(out)

    def market_state(self, s: str, now_s: float, market_ms: int) -> MarketState:
        book = self.books[s]
        summary = None
        if book is not None:
            age = now_s - book.recv_s if now_s > book.recv_s else 0.0
            limit = self.cfg.book_fresh_s if book.summary_source == "ws" else self.cfg.rest_max_age_s
            summary = BookSummary(
                best_bid=book.best_bid, best_ask=book.best_ask, bid_size=book.bid_size, ask_size=book.ask_size,
                spread_bps=book.spread_bps, imbalance=book.imbalance, bid_depth=book.bid_depth,
                ask_depth=book.ask_depth, depth_bps=book.depth_bps, update_id=book.update_id,
                source=book.summary_source, age_s=age, fresh=age <= limit)
        f = self.funding[s]
        funding = None if f is None else Funding(
            mark_price=f.mark, index_price=f.index, funding_rate=f.rate, next_funding_ms=f.next_ms,
            source=f.source, age_s=max(0.0, now_s - f.recv_s))
        clusters, burst = ((), None) if self.clusters[s].empty else self.cluster_view(s, market_ms)
        last, mid, mark = self.board.quotes(s, now_s)
        return MarketState(
            symbol=s, last=last, mid=mid, mark=mark, book=summary, funding=funding, candles=self.closed_candles(s, market_ms) if self.intervals else (),
            clusters=clusters, burst=burst)

    def cluster_view(self, s: str, market_ms: int) -> tuple[tuple[Cluster, ...], Burst | None]:
        """Clusters and burst at ``market_ms``; skipped for a market without liquidations, memoized per moment."""
        cmap = self.clusters[s]
        if cmap.empty:
            return (), None
        memo = self.cluster_memo.get(s)
        if memo is None or memo[0] != market_ms or cmap.version != self.cluster_versions.get(s):
            memo = (market_ms, cmap.clusters(market_ms)[:_CLUSTERS_IN_VIEW], cmap.burst(market_ms))
            self.cluster_memo[s] = memo
            self.cluster_versions[s] = cmap.version
        return memo[1], memo[2]

    def quality_stats(self, now_s: float) -> QualityStats:
        """The quality snapshot: rebuilt at once when anything but a message count changed, else at most every
        ``_QUALITY_REFRESH_S`` (its ``as_of_s`` says when); rebuilding it per event cost more than the event."""
        held = self.quality_view
        version = self.quality.structure_version
        if held is None or version != self.quality_seen or now_s - held.as_of_s >= _QUALITY_REFRESH_S:
            held = self.quality_view = self.quality.statistics(now_s)
            self.quality_seen = version
        return held

    def view(self) -> MarketView:
        now_s = trio.current_time()
        market_ms = self.market_now_ms()
        states = tuple([self.market_state(s, now_s, market_ms) for s in self.symbols])
        self.version += 1
        return MarketView(version=self.version, as_of_ms=self.now_ms(), as_of_s=now_s, markets=states,
                          quality=self.quality_stats(now_s))

    def publish(self) -> None:
        self.view_out.send_nowait(self.view())

    def next_transition(self) -> float:
        """The next moment a quote changes tier (live, cached, rest, stale) without new data."""
        now = trio.current_time()
        best = math.inf
        for s in self.symbols:
            for kind in PRICE_KINDS:
                limits = self.limits[kind]
                for source, bounds in (("ws", (limits.ws_fresh_s, limits.cache_max_age_s)),
                                       ("rest", (limits.rest_max_age_s,))):
                    tick = self.board.latest(s, kind, source)  # type: ignore[arg-type]
                    if tick is None:
                        continue
                    for bound in bounds:
                        at = tick.recv_s + bound + _EPS
                        if now < at < best:
                            best = at
            book = self.books[s]
            if book is not None:
                at = book.recv_s + self.cfg.book_fresh_s + _EPS
                if now < at < best:
                    best = at
        return best

    async def republish_on_transitions(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                                       ) -> NoReturn:
        task_status.started()
        while True:
            with trio.CancelScope(deadline=self.next_transition()) as scope:
                self.timer = scope
                await trio.sleep_forever()
            self.timer = None
            self.publish()

    # -- REST fallback --------------------------------------------------------------------------------------
    def _kinds(self, symbol: str) -> tuple[PriceKind, ...]:
        return ("last", "mid", "mark") if symbol.endswith("_PERP") else ("last", "mid")

    async def poll_rest(self, symbol: str) -> NoReturn:
        while True:
            now = trio.current_time()
            needed = [k for k in self._kinds(symbol) if not self.board.ws_live(symbol, k, now)]
            if needed:
                for kind in needed:
                    await self.rest_limiter.acquire()
                    if not self.board.ws_live(symbol, kind, trio.current_time()):
                        await self.fetch(symbol, kind)
                wake = now + self.cfg.rest_poll_interval_s
            else:
                wake = min(self.board.latest(symbol, k, "ws").recv_s + self.limits[k].ws_fresh_s  # type: ignore[union-attr]
                           for k in self._kinds(symbol)) + _EPS
            await trio.sleep_until(wake)

    async def fetch(self, symbol: str, kind: PriceKind) -> None:
        stream = f"rest.{ {'last': 'ticker', 'mid': 'depth', 'mark': 'markPrices'}[kind]}"
        try:
            with trio.fail_after(self.cfg.rest_timeout_s):
                if kind == "last":
                    body = await rest_get(self.client, "/api/v1/ticker", {"symbol": symbol})
                    recv = trio.current_time()
                    self.record(symbol, "last", value=decode_ticker(body).last_price, source="rest",
                                      recv_s=recv)
                elif kind == "mark":
                    body = await rest_get(self.client, "/api/v1/markPrices", {"symbol": symbol})
                    recv = trio.current_time()
                    for row in decode_mark_prices(body):
                        if row.symbol == symbol:
                            self.record(symbol, "mark", value=row.mark_price, source="rest", recv_s=recv)
                            self.funding[symbol] = _Funding(
                                mark=row.mark_price, index=row.index_price, rate=row.funding_rate,
                                next_ms=None if row.next_funding_time_us is None else row.next_funding_time_us // 1000,
                                source="rest", recv_s=recv)
                else:
                    body = await rest_get(self.client, "/api/v1/depth", {"symbol": symbol, "limit": 5})
                    recv = trio.current_time()
                    snap = decode_depth(body)
                    # Both sides are ascending on the wire: the best bid is the last one.
                    if snap.bids and snap.asks and snap.bids[-1][0] < snap.asks[0][0]:
                        (bid, bid_size), (ask, ask_size) = snap.bids[-1], snap.asks[0]
                        self.record(symbol, "mid", value=(bid + ask) / 2, source="rest", recv_s=recv)
                        held = self.books[symbol]
                        if held is None or held.summary_source == "rest" or recv - held.recv_s > self.cfg.book_fresh_s:
                            self.set_book(symbol, _Book(
                                summary_source="rest", best_bid=bid, best_ask=ask, bid_size=bid_size,
                                ask_size=ask_size, bid_depth=sum((q for _, q in snap.bids), Decimal(0)),
                                ask_depth=sum((q for _, q in snap.asks), Decimal(0)), depth_bps=Decimal(0),
                                update_id=snap.last_update_id, recv_s=recv))
            self.quality.message(stream, now_s=trio.current_time())
        except trio.TooSlowError:
            self.quality.decode_error(stream, "timeout")
            return
        except (ExchangeUnavailable, ApiError, ProtocolError) as exc:
            log.warning("REST fallback %s for %s failed: %s", kind, symbol, exc)
            self.quality.decode_error(stream, type(exc).__name__)
            return
        self.publish()

    # -- kline backfill -------------------------------------------------------------------------------------
    async def backfill(self) -> NoReturn:
        while True:
            await self.backfill_wanted.wait()
            self.backfill_wanted = trio.Event()
            for symbol in self.symbols:
                now = self.market_now_ms()
                for gap in self.candles[symbol].gaps(now, grace_ms=int(self.cfg.candle_close_grace_s * 1000)):
                    key = (symbol, gap.interval, gap.start_ms, gap.end_ms)
                    if key in self.attempted:
                        continue  # asked already; the exchange had nothing more for this range
                    if len(self.attempted) > 10_000:
                        self.attempted.clear()
                    self.attempted.add(key)
                    await self.history_limiter.acquire()
                    await self.fetch_klines(symbol, gap.interval, gap.start_ms, gap.end_ms)

    async def fetch_klines(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> None:
        stream = f"rest.klines.{interval}"
        try:
            with trio.fail_after(self.cfg.rest_timeout_s):
                body = await rest_get(self.client, "/api/v1/klines", {
                    "symbol": symbol, "interval": interval, "startTime": start_ms // 1000,
                    "endTime": end_ms // 1000})
            rows = decode_klines(body)
        except trio.TooSlowError:
            self.quality.decode_error(stream, "timeout")
            return
        except (ExchangeUnavailable, ApiError, ProtocolError) as exc:
            log.warning("kline backfill %s %s failed: %s", symbol, interval, exc)
            self.quality.decode_error(stream, type(exc).__name__)
            return
        self.quality.message(stream, now_s=trio.current_time())
        series = self.candles[symbol].series(interval)
        now = self.market_now_ms()
        step = interval_ms(interval)
        for row in rows:
            row_start = _ms(row.start)
            row_end = row_start + step if row.end is None else _ms(row.end)
            if not start_ms <= row_start < end_ms or row_end > now:
                continue  # outside the gap, or the still-open bar
            try:
                if row.open is None or row.high is None or row.low is None or row.close is None:
                    series.mark_empty(row_start)
                else:
                    series.apply(Candle(interval=interval, start_ms=row_start, end_ms=row_end, open=row.open,
                                        high=row.high, low=row.low, close=row.close, volume=row.volume,
                                        trades=row.trades, final=True, event_ms=0))
            except ValueError:
                self.quality.decode_error(stream, "misaligned bar")
        self.publish()


async def run_cache(
    cfg: CacheConfig,
    *,
    inbox: trio.MemoryReceiveChannel[FeedEvent],
    view_out: LatestSender[MarketView],
    rest: httpx.AsyncClient | str,
    symbols: Sequence[str],
    now_ms: Callable[[], int],
    intervals: Sequence[str] = CANDLE_INTERVALS,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Fold feed events into the market state and publish a MarketView on every change."""
    if isinstance(rest, httpx.AsyncClient):
        await _run(cfg, inbox, view_out, rest, symbols, now_ms, intervals, task_status)
    async with httpx.AsyncClient(base_url=rest, timeout=cfg.rest_timeout_s) as client:
        await _run(cfg, inbox, view_out, client, symbols, now_ms, intervals, task_status)
    raise InvariantViolation("cache stopped")  # unreachable: _run never returns


def _drain(cache: _Cache, inbox: trio.MemoryReceiveChannel[FeedEvent]) -> int:
    """Fold every event already waiting (without a checkpoint); returns how many."""
    n = 0
    while n < _DRAIN_MAX:
        try:
            event = inbox.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            break
        cache.fold(event)
        n += 1
    return n


async def _run(cfg: CacheConfig, inbox: trio.MemoryReceiveChannel[FeedEvent], view_out: LatestSender[MarketView],
               client: httpx.AsyncClient, symbols: Sequence[str], now_ms: Callable[[], int],
               intervals: Sequence[str], task_status: trio.TaskStatus[None]) -> NoReturn:
    cache = _Cache(cfg, symbols, intervals, client, view_out, now_ms)
    async with inbox, trio.open_nursery() as nursery:
        await nursery.start(cache.republish_on_transitions)
        for symbol in cache.symbols:
            nursery.start_soon(cache.poll_rest, symbol)
        nursery.start_soon(cache.backfill)
        cache.publish()
        task_status.started()
        async for event in inbox:
            cache.fold(event)
            # Fold what is waiting, give the feed one scheduling round to hand over what is already on the
            # socket, fold that too, then publish: an idle pipeline adds a single round, and a burst becomes one
            # view instead of one per event. While events keep coming (a flood), publish and nap between
            # chunks rather than waking once per event. Nothing folded is ever held while this task blocks,
            # so the latest view always reflects every event the cache has taken.
            _drain(cache, inbox)
            await trio.lowlevel.checkpoint()
            if _drain(cache, inbox):
                # Events are arriving back to back: publish, nap, fold the chunk; stay in this mode only while
                # a nap collects at least _FLOOD_MIN events (a flood), so a paced stream is never delayed by it.
                while True:
                    cache.publish()
                    await trio.sleep(_FLOOD_NAP_S)
                    if _drain(cache, inbox) < _FLOOD_MIN:
                        break
            cache.publish()
        raise InvariantViolation("cache inbox closed: every feed end of the channel is gone")
