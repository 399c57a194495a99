"""The feed actor: one WebSocket connection carrying every configured stream, decoded into ``FeedEvent``s.

Owns the socket, the REST client used for depth snapshots (unless one is injected), one ``OrderBook`` per
market and one stall watch per watched stream. Invariants:

* One attempt = one connection. Every connect sends every subscription (private ones signed with a fresh
  timestamp). Any disconnect, error frame or stall ends the attempt with a ``TransientError``
  (``FeedDisconnected`` / ``FeedStale``); reconnecting is the supervisor restarting this actor by policy.
* A stall is a stream silent past its limit: each frame notes its receive time and each watch sleeps until
  that time plus the limit (re-arming if a frame came meanwhile), so detection happens exactly at the limit,
  with at most one wake-up per limit and no per-frame timer work.
* Hot path: no task hand-off per frame and ``send_nowait`` to ``out`` when there is room (a blocking ``send``
  only under backpressure), so a frame costs one scheduling round, like a bare receive loop.
* Depth: deltas are buffered until the REST snapshot arrives; only continuous deltas are applied; a gap,
  crossed book, buffer overflow or undecodable depth frame discards the book and fetches a new snapshot
  (reported as ``BookInvalid`` so the cache counts it).
* Transport failures are translated in one place (``run_feed``'s ``except*``): a refused or timed-out
  handshake, a closed connection, a socket or TLS error and a broken stream all become ``FeedDisconnected``
  (chained to the original), wherever they were raised - trio-websocket raises a refused handshake from its
  own reader task, so it arrives inside an ExceptionGroup. Anything else (a bug) still propagates.
* Decode failures are reported as ``DecodeFailed`` (stream type and a bounded reason) and never end the actor.
* Every event carries the trio-clock receive time and, for exchange events, the injected wall clock.
* Frames are decoded and handled by the reader task in arrival order; a depth snapshot is applied by the task
  that fetched it. Every book change and the read of its top that follows are one synchronous section, so no
  task ever sees a half-applied book, and BookStates leave in update-id order per book.
"""

from __future__ import annotations

import logging
import re
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import NoReturn, TypeVar

import httpx
import trio
import trio_websocket

from engine.backpack.book import Applied, OrderBook, ResyncNeeded
from engine.backpack.events import (
    BalanceUpdate,
    BookTicker,
    Depth,
    OrderUpdate,
    PositionUpdate,
    Ticker,
    Trade,
    WsError,
)
from engine.backpack.frames import decode_frame
from engine.backpack.responses import DepthSnapshot, decode_depth, decode_error
from engine.backpack.signing import Signer
from engine.errors import (
    ApiError,
    AuthError,
    ConfigError,
    EngineError,
    ExchangeUnavailable,
    FeedDisconnected,
    FeedStale,
    ProtocolError,
    RateLimited,
    RemoteProtocolError,
)
from engine.market.config import FeedConfig
from engine.market.feed_events import (
    BookInvalid,
    BookState,
    DecodeFailed,
    FeedEvent,
    FeedStatus,
    Received,
    StreamStalled,
)
from engine.market.streams import (
    Plan,
    Watch,
    classify_decode_error,
    plan_streams,
    private_subscribe_frame,
    subscribe_frame,
    watch_key,
)

__all__ = ["BOOK_TOP_LEVELS", "DEPTH_ANALYSIS_BPS", "rest_get", "run_feed"]

log = logging.getLogger("engine.feed")

BOOK_TOP_LEVELS = 20
DEPTH_ANALYSIS_BPS = Decimal(10)
_T = TypeVar("_T")
_DEPTH_SYMBOL = re.compile(r"'depth\.(?:\d+ms\.)?([A-Za-z0-9_.]+)'")


@asynccontextmanager
async def _rest_client(rest: httpx.AsyncClient | str, timeout_s: float) -> AsyncIterator[httpx.AsyncClient]:
    """Use an injected client as-is (its owner closes it), or own one for a base URL."""
    if isinstance(rest, httpx.AsyncClient):
        yield rest
        return
    async with httpx.AsyncClient(base_url=rest, timeout=timeout_s) as client:
        yield client


async def rest_get(client: httpx.AsyncClient, path: str, params: dict[str, str | int]) -> bytes:
    """GET a public endpoint and return the body of a 200; the one place httpx errors are translated for the
    data layer (error bodies are classified by ``decode_error``: 429 -> RateLimited, 5xx -> unavailable)."""
    try:
        response = await client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise ExchangeUnavailable(f"GET {path}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise decode_error(response.status_code, response.content)
    return response.content


async def _send(channel: trio.MemorySendChannel[_T], item: _T) -> None:
    """Send without a scheduling round trip when there is room; wait (backpressure) only when there is none."""
    try:
        channel.send_nowait(item)
    except trio.WouldBlock:
        await channel.send(item)


class _Session:
    """State of one connection attempt."""

    def __init__(
        self,
        cfg: FeedConfig,
        plan: Plan,
        client: httpx.AsyncClient,
        out: trio.MemorySendChannel[FeedEvent],
        account_out: trio.MemorySendChannel[FeedEvent] | None,
        now_ms: Callable[[], int],
    ) -> None:
        self.cfg = cfg
        self.plan = plan
        self.client = client
        self.out = out
        self.account_out = account_out
        self.now_ms = now_ms
        self.books = {s: OrderBook(s, max_buffered=cfg.depth_buffer_frames) for s in plan.depth_symbols}
        self.fetching: set[str] = set()
        self.last_seen: dict[str, float] = {}  # watched stream -> trio time of its newest frame
        self.failure: EngineError | None = None
        self.cause: BaseException | None = None
        self.nursery: trio.Nursery | None = None

    def fail(self, error: EngineError) -> None:
        """End the attempt with ``error`` (the first failure wins) by cancelling the session's nursery."""
        if self.failure is None:
            self.failure = error
        assert self.nursery is not None
        self.nursery.cancel_scope.cancel(reason=str(error))

    async def watch(self, w: Watch, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # A lazy timer: a frame only notes its time (cheap, per frame); the watch wakes at the old deadline and
        # sleeps again until the new one, so the stall is still caught exactly when the stream is silent for
        # limit_s (moving a cancel-scope deadline on every frame cost more than decoding it).
        self.last_seen[w.key] = trio.current_time()
        task_status.started()
        while True:
            deadline = self.last_seen[w.key] + w.limit_s
            if trio.current_time() >= deadline:
                break
            await trio.sleep_until(deadline)
        now = trio.current_time()
        await _send(self.out, StreamStalled(stream=w.key, silent_s=w.limit_s, recv_s=now))
        self.fail(FeedStale(f"{w.key} silent for {w.limit_s:g}s"))

    def bump(self, key: str, recv_s: float) -> None:
        if key in self.last_seen:
            self.last_seen[key] = recv_s

    async def read(self, ws: trio_websocket.WebSocketConnection) -> None:
        """Receive and handle frames in arrival order, in this task (a hand-off to another task per frame cost
        a scheduling round each)."""
        get_message, now_ms, current_time = ws.get_message, self.now_ms, trio.current_time
        while True:
            try:
                text = await get_message()
            except trio_websocket.ConnectionClosed as exc:
                # The normal end of a connection: recorded here (not raised) so it wins over the
                # cancellation it causes in the sibling tasks.
                self.cause = exc
                self.fail(FeedDisconnected(_describe(exc)))
                return
            await self.on_frame(text, current_time(), now_ms())
            if self.failure is not None:
                return  # the attempt is over: nothing after the failing frame may be delivered

    async def fetch_snapshot(self, symbol: str) -> None:
        try:
            with trio.fail_after(self.cfg.snapshot_timeout_s):
                body = await rest_get(
                    self.client, "/api/v1/depth", {"symbol": symbol, "limit": self.cfg.depth_levels})
            snapshot = decode_depth(body)
        except trio.TooSlowError:
            self.fail(ExchangeUnavailable(f"depth snapshot for {symbol}: no answer in {self.cfg.snapshot_timeout_s:g}s"))
            return
        except (ExchangeUnavailable, RateLimited) as exc:
            self.fail(exc)
            return
        except (ApiError, ProtocolError) as exc:
            # A malformed or refused snapshot cannot be fixed by retrying on this connection.
            self.fail(ExchangeUnavailable(f"depth snapshot for {symbol}: {exc}"))
            return
        # Applied here: the book changes only inside synchronous sections (apply, then read its top), so
        # this task and the reader never see it half-updated; BookStates carry update ids in book order.
        await self.on_snapshot(symbol, snapshot)

    def request_snapshot(self, symbol: str) -> None:
        if symbol in self.fetching:
            return
        self.fetching.add(symbol)
        assert self.nursery is not None
        self.nursery.start_soon(self.fetch_snapshot, symbol)

    async def emit_book(self, book: OrderBook, engine_time_us: int | None) -> None:
        bids, asks = book.top(BOOK_TOP_LEVELS)
        bid_depth, ask_depth = book.size_within_bps(DEPTH_ANALYSIS_BPS) or (Decimal(0), Decimal(0))
        await _send(self.out, BookState(
            symbol=book.symbol, update_id=book.last_update_id or 0, bids=bids, asks=asks, bid_depth=bid_depth,
            ask_depth=ask_depth, depth_bps=DEPTH_ANALYSIS_BPS, engine_time_us=engine_time_us,
            recv_s=trio.current_time(),
        ))

    async def resync(self, book: OrderBook, outcome: ResyncNeeded) -> None:
        log.info("depth %s resync: %s", book.symbol, outcome.reason)
        await _send(self.out, BookInvalid(symbol=book.symbol, reason=outcome.reason, gap="gap" in outcome.reason,
                                        recv_s=trio.current_time()))
        self.request_snapshot(book.symbol)

    async def on_snapshot(self, symbol: str, snapshot: DepthSnapshot) -> None:
        self.fetching.discard(symbol)
        book = self.books[symbol]
        outcome = book.apply_snapshot(snapshot)
        if isinstance(outcome, ResyncNeeded):
            await self.resync(book, outcome)
        elif isinstance(outcome, Applied):
            await self.emit_book(book, None)

    async def on_frame(self, text: str | bytes, recv_s: float, recv_ms: int) -> None:
        try:
            event = decode_frame(text)
        except RemoteProtocolError as exc:
            stream, reason = classify_decode_error(str(exc))
            await _send(self.out, DecodeFailed(stream=stream, reason=reason, recv_s=recv_s))
            if stream == "depth":
                # A lost delta would surface as a gap later; resync now rather than serve a wrong book.
                match = _DEPTH_SYMBOL.search(str(exc))
                targets = [match.group(1)] if match and match.group(1) in self.books else list(self.books)
                for symbol in targets:
                    # A fresh book (empty, buffering) is the documented way to drop a book and resnapshot.
                    self.books[symbol] = OrderBook(symbol, max_buffered=self.cfg.depth_buffer_frames)
                    await self.resync(self.books[symbol], ResyncNeeded(reason="undecodable depth frame"))
            return
        cls = event.__class__
        if cls is Trade or cls is BookTicker or cls is Ticker:
            # The hottest streams: straight through (the generic dispatch below ends the same way for them).
            assert isinstance(event, Trade | BookTicker | Ticker)
            stream = event.stream
            if stream in self.last_seen:
                self.last_seen[stream] = recv_s
            await _send(self.out, Received(event=event, recv_s=recv_s, recv_ms=recv_ms))
            return
        match event:
            case WsError(code=4003):
                self.fail(AuthError(f"private subscription refused: {event.code} {event.message}"))
                return
            case WsError():
                self.fail(FeedDisconnected(f"exchange error frame {event.code}: {event.message}"))
                return
            case Depth():
                self.bump(watch_key(event.stream), recv_s)
                book = self.books.get(event.symbol)
                if book is None or event.window_ms is not None:
                    await _send(self.out, Received(event=event, recv_s=recv_s, recv_ms=recv_ms))
                    return
                outcome = book.apply_delta(event)
                if isinstance(outcome, Applied):
                    await self.emit_book(book, event.engine_time_us)
                elif isinstance(outcome, ResyncNeeded):
                    await self.resync(book, outcome)
            case OrderUpdate() | PositionUpdate() | BalanceUpdate():
                target = self.account_out if self.account_out is not None else self.out
                await _send(target, Received(event=event, recv_s=recv_s, recv_ms=recv_ms))
            case _:
                self.bump(watch_key(event.stream), recv_s)
                await _send(self.out, Received(event=event, recv_s=recv_s, recv_ms=recv_ms))


async def run_feed(
    cfg: FeedConfig,
    *,
    ws_url: str,
    rest: httpx.AsyncClient | str,
    symbols: Sequence[str],
    out: trio.MemorySendChannel[FeedEvent],
    now_ms: Callable[[], int],
    signer: Signer | None = None,
    account_out: trio.MemorySendChannel[FeedEvent] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Connect, subscribe, and stream events to ``out`` until something goes wrong (then raise)."""
    parts = urllib.parse.urlsplit(ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(f"feed: not a WebSocket URL: {ws_url!r}")
    plan = plan_streams(cfg, symbols, private=signer is not None)
    if not cfg.enable_websocket or not (plan.public or plan.private):
        # The WebSocket is off: the cache's REST fallback is the only source. Stay up so the tree is stable.
        task_status.started()
        await trio.sleep_forever()
    async with _rest_client(rest, cfg.snapshot_timeout_s) as client:
        session = _Session(cfg, plan, client, out, account_out, now_ms)
        streams = plan.public + plan.private
        try:
            await _attempt(session, ws_url, signer, streams, task_status)
        except* _TRANSPORT_ERRORS as group:
            # The one translation boundary: trio-websocket raises from its own reader task (so a refused
            # handshake arrives wrapped in the connection nursery's ExceptionGroup), and a socket error can come
            # from any task; all of them mean "this connection is gone" and are retried by the supervisor.
            cause = _first_leaf(group)
            session.failure = session.failure or FeedDisconnected(f"{ws_url}: {_describe(cause)}")
            session.cause = session.cause or cause
        failure = session.failure or FeedDisconnected("connection ended")
        with trio.move_on_after(1.0, shield=True):
            # Best effort, bounded: tell the cache the connection is gone before the supervisor restarts us.
            await out.send(FeedStatus(state="disconnected", streams=streams, reason=str(failure),
                                      recv_s=trio.current_time()))
        raise failure from session.cause


_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    trio_websocket.HandshakeError,  # also ConnectionRejected, ConnectionTimeout, DisconnectionTimeout
    trio_websocket.ConnectionClosed,
    OSError,  # connect refused, DNS, TLS (ssl.SSLError is an OSError)
    trio.BrokenResourceError,  # the TCP stream broke under a send
    httpx.HTTPError,  # rest_get translates these already; kept so a new call site cannot leak one
)


def _first_leaf(group: BaseExceptionGroup[Exception]) -> Exception:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, Exception)
    return exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return f"handshake refused with HTTP {exc.status_code}"
    if isinstance(exc, trio_websocket.ConnectionClosed):
        reason = exc.reason
        detail = "" if reason is None else f" {reason.code} {reason.name} {reason.reason or ''}"
        return f"connection closed:{detail}"
    return f"cannot connect or connection lost: {type(exc).__name__}: {exc}"


async def _attempt(
    session: _Session,
    ws_url: str,
    signer: Signer | None,
    streams: tuple[str, ...],
    task_status: trio.TaskStatus[None],
) -> None:
    """One connection attempt; returns with ``session.failure`` set, or raises a transport error."""
    cfg = session.cfg
    # trio-websocket's open_websocket_url neither cancels its reader task nor closes the socket when the
    # handshake times out, so we own the TCP stream and the connection's nursery and close both on every
    # way out.
    async with trio.open_nursery() as ws_nursery:
        stream: trio.abc.Stream | None = None
        try:
            with trio.move_on_after(cfg.connect_timeout_s) as connect_scope:
                stream, ws = await _connect(ws_nursery, ws_url)
            if connect_scope.cancelled_caught:
                session.failure = FeedDisconnected(
                    f"cannot connect to {ws_url}: no handshake in {cfg.connect_timeout_s:g}s")
            else:
                try:
                    await _run_session(session, ws, signer, streams, task_status)
                finally:
                    with trio.move_on_after(1.0, shield=True):
                        await ws.aclose()
        finally:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            ws_nursery.cancel_scope.cancel(reason="feed attempt over")


async def _connect(
    nursery: trio.Nursery, url: str
) -> tuple[trio.abc.Stream, trio_websocket.WebSocketConnection]:
    """Open the TCP (or TLS) stream and do the WebSocket handshake; the stream is closed if the handshake fails."""
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "wss"
    assert parts.hostname is not None  # checked by run_feed before connecting
    port = parts.port or (443 if secure else 80)
    stream: trio.abc.Stream
    if secure:
        stream = await trio.open_ssl_over_tcp_stream(parts.hostname, port, ssl_context=ssl.create_default_context())
    else:
        stream = await trio.open_tcp_stream(parts.hostname, port)
    try:
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        ws = await trio_websocket.wrap_client_stream(
            nursery, stream, parts.hostname, resource, message_queue_size=64, max_message_size=16 * 1024 * 1024)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream, ws


async def _run_session(
    session: _Session,
    ws: trio_websocket.WebSocketConnection,
    signer: Signer | None,
    streams: tuple[str, ...],
    task_status: trio.TaskStatus[None],
) -> None:
    cfg, plan = session.cfg, session.plan
    async with trio.open_nursery() as nursery:
        session.nursery = nursery
        if plan.public:
            await ws.send_message(subscribe_frame(plan.public))
        if plan.private and signer is not None:
            await ws.send_message(private_subscribe_frame(
                plan.private, signer, timestamp_ms=session.now_ms(), window_ms=cfg.private_window_ms))
        for w in plan.watches:
            await nursery.start(session.watch, w)
        for symbol in plan.depth_symbols:
            session.request_snapshot(symbol)
        nursery.start_soon(session.read, ws)
        await session.out.send(FeedStatus(state="connected", streams=streams, reason="subscribed",
                                          recv_s=trio.current_time()))
        task_status.started()
