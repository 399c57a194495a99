"""The Backpack-compatible simulated exchange as a real server: REST and WebSocket on one loopback port.

Owns: the ASGI application (a small hand-written router) served by hypercorn's trio worker, the market stepper
task that advances the pure core (``engine.sim.core.SimExchange``) and routes its ``Emit`` values to WebSocket
subscribers, request signing checks against the host clock, rate limits, and fault injection hooks.

Invariants:
* Paths, parameters, status codes and bodies follow ``backpack-protocol.md`` sections 1-6: ``/api/v1/ping`` and
  ``/api/v1/time`` are plain text, request-parse failures are plain-text 400, unknown paths plain-text 404
  ``not found``, semantic errors JSON ``{"code","message"}``.
* Signed requests are verified on the textual values received (query text for GET, the literal JSON text of each
  top-level body value for POST/DELETE, the batch rule for ``POST /api/v1/orders``); the window is checked
  against the host clock, never market time.
* The core is only touched from this trio thread, one call at a time; market time never goes backwards.
* Per-connection outboxes are bounded; a connection whose outbox overflows is dropped and counted.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any, NoReturn, cast
from urllib.parse import parse_qsl

import attrs
import hypercorn.config
import hypercorn.trio
import orjson
import trio

from engine.backpack.requests import VerifyFailure, verify_request
from engine.backpack.signing import MAX_WINDOW_MS, verify_signature
from engine.sim.clock import SimClock, iso_to_us
from engine.sim.config import SimConfig
from engine.sim.core import Emit, SimApiError, SimConfigLike, SimExchange, SimParams
from engine.sim.faults import Faults, FaultStats
from engine.sim.firehose import FirehoseStats, serve_firehose
from engine.sim.ratelimit import RateLimiter, RateLimiterStats
from engine.sim.routes import (
    DEPTH_WINDOWS_MS,
    Connection,
    DepthAggregator,
    StreamError,
    Subscriptions,
    classify_stream,
)

__all__ = ["ServerStats", "SimApp", "SimHandle", "build_core", "serve_simulator"]

log = logging.getLogger("engine.sim.server")

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_MAX_BODY = 1 << 20
_DEPTH_LIMITS = frozenset({"5", "10", "20", "50", "100", "500", "1000"})
_JSON_HEADERS = [(b"content-type", b"application/json; charset=utf-8")]
_TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


@attrs.frozen(kw_only=True)
class ServerStats:
    """Counters of one server run (frozen snapshot)."""

    rest_requests: int
    rest_errors: int
    signature_failures: int
    ws_connections_opened: int
    ws_connections_open: int
    ws_dropped_slow: int
    frames_queued: int
    frames_sent: int
    steps: int
    emits: int
    firehose_frames: int
    market_now_us: int
    faults: FaultStats
    rate_limits: RateLimiterStats


class _Reply(Exception):
    """Short-circuits a request with a finished reply (status, body bytes, JSON or text)."""

    def __init__(self, status: int, body: bytes, *, text: bool = False) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.text = text


def _dumps_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot encode {type(value).__name__}")


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_dumps_default)


def _api_error(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, _dumps({"code": code, "message": message}))


def _parse_error(text: str) -> _Reply:
    return _Reply(400, text.encode(), text=True)


class _Literal(str):
    """A JSON number kept as the exact text that was sent (signatures are over the text)."""

    __slots__ = ()


def _literal_body(raw: bytes) -> Any:
    return json.loads(raw, parse_float=_Literal, parse_int=_Literal)


def _typed_body(raw: bytes) -> Any:
    return json.loads(raw, parse_float=Decimal)


@attrs.frozen(kw_only=True)
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    client: str


@attrs.frozen(kw_only=True)
class _Route:
    handler: Callable[[SimApp, _Request, str | None], Awaitable[tuple[int, Any]]]
    instruction: str | None = None  # None = public
    history: bool = False  # counts against the stricter history rate limit


def _int_param(req: _Request, name: str, *, default: int | None = None, what: str = "u64") -> int | None:
    text = req.query.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise _parse_error(f'failed to parse parameter `{name}`: failed to parse "{what}": invalid digit found in '
                           f"string") from None


def _required(req: _Request, name: str) -> str:
    value = req.query.get(name)
    if value is None:
        raise _parse_error(f'failed to parse parameter `{name}`: Type "String" expects an input value.')
    return value


def _limit(req: _Request, *, default: int, maximum: int) -> int:
    limit = _int_param(req, "limit", default=default)
    assert limit is not None
    if not 1 <= limit <= maximum:
        raise _api_error(400, "INVALID_CLIENT_REQUEST", f"Limit must be between 1 and {maximum}")
    return limit


class SimApp:
    """The ASGI application plus the background tasks that drive the market and the faults."""

    def __init__(self, cfg: SimConfig, core: SimExchange, clock: SimClock, faults: Faults) -> None:
        self.cfg = cfg
        self.core = core
        self.clock = clock
        self.faults = faults
        self.limiter = RateLimiter(per_minute=cfg.rest_limit_per_min, history_per_minute=cfg.history_limit_per_min)
        self.subs = Subscriptions()
        self.connections: set[Connection] = set()
        self._aggregators: dict[tuple[str, str], DepthAggregator] = {}
        self._next_conn_id = 0
        self._market_us = max(core.start_time_us(), clock.market_now_us())
        self._api_keys = frozenset(cfg.api_keys)
        self.firehose_stats = FirehoseStats()
        self._counts = {"rest_requests": 0, "rest_errors": 0, "signature_failures": 0, "ws_opened": 0,
                        "ws_dropped_slow": 0, "frames_sent": 0, "steps": 0, "emits": 0, "frames_queued": 0}

    # -- statistics ----------------------------------------------------------------------------------------

    def statistics(self) -> ServerStats:
        c = self._counts
        return ServerStats(
            rest_requests=c["rest_requests"], rest_errors=c["rest_errors"],
            signature_failures=c["signature_failures"], ws_connections_opened=c["ws_opened"],
            ws_connections_open=len(self.connections), ws_dropped_slow=c["ws_dropped_slow"],
            frames_queued=c["frames_queued"], frames_sent=c["frames_sent"], steps=c["steps"], emits=c["emits"],
            firehose_frames=self.firehose_stats.frames,
            market_now_us=self._market_us, faults=self.faults.statistics(),
            rate_limits=self.limiter.statistics(),
        )

    @property
    def market_now_us(self) -> int:
        """The market time the core has been stepped to (the state every REST answer reflects)."""
        return self._market_us

    # -- background tasks ----------------------------------------------------------------------------------

    async def run_market(self) -> NoReturn:
        """Step the core at a steady cadence (or as fast as clients keep up when speed is unbounded)."""
        end_us = self.core.end_time_us()
        step_us = int(self.cfg.max_step_market_s * 1_000_000)
        next_wake = trio.current_time()
        while True:
            if self.clock.unbounded:
                await self._wait_outboxes_drained()
                now_us = self.clock.advance_unbounded(step_us)
            else:
                next_wake = max(next_wake + self.cfg.step_interval_s, trio.current_time())
                await trio.sleep_until(next_wake)
                now_us = self.clock.market_now_us()
            now_us = min(now_us, end_us)
            if now_us > self._market_us:
                self.step_to(now_us)
            if now_us >= end_us:
                log.info("replay reached its end at %d us; serving the final state", end_us)
                await trio.sleep_forever()

    def step_to(self, now_us: int) -> None:
        """Advance the core to ``now_us`` and publish what it emitted."""
        emits = self.core.step(now_us)
        self._market_us = now_us
        self._counts["steps"] += 1
        self.publish(emits)

    async def _wait_outboxes_drained(self) -> None:
        # Unbounded speed: let each client catch up to half its outbox (at most 1 s per client) so that "as
        # fast as possible" means as fast as the consumers read, not "drop everyone".
        half = self.cfg.ws_queue_size // 2
        for conn in list(self.connections):
            if conn.backlog() > half:
                with trio.move_on_after(1.0):
                    await conn.wait_backlog_at_most(half)
        await trio.lowlevel.checkpoint()

    async def run_depth_windows(self, window: str) -> NoReturn:
        """Flush the aggregated ``depth.<window>.<symbol>`` streams once per window (host time)."""
        period = DEPTH_WINDOWS_MS[window] / 1000.0
        next_wake = trio.current_time()
        while True:
            next_wake = max(next_wake + period, trio.current_time())
            await trio.sleep_until(next_wake)
            for (win, symbol), agg in list(self._aggregators.items()):
                if win != window:
                    continue
                stream = f"depth.{window}.{symbol}"
                if not self.subs.has(stream):
                    del self._aggregators[(win, symbol)]
                    continue
                payload = agg.flush(self._market_us)
                if payload is not None:
                    self._deliver(stream, stream, payload)

    async def run_fault_timers(self) -> NoReturn:
        """Drop all connections on demand and on the configured schedule."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._drop_on_demand)
            while True:
                period = self.faults.drop_every_s
                with trio.move_on_after(period if period > 0 else math.inf) as scope:
                    await self.faults.wait_schedule_changed()
                if scope.cancelled_caught:
                    self.faults.drop_connections()

    async def _drop_on_demand(self) -> NoReturn:
        while True:
            await self.faults.wait_drop()
            for conn in list(self.connections):
                if not conn.closed:
                    conn.close(1001)
                    self.faults.count("connections_dropped")

    # -- publishing ---------------------------------------------------------------------------------------

    def publish(self, emits: list[Emit]) -> None:
        """Route every Emit to its subscribers (private ones only to their account's connections)."""
        self._counts["emits"] += len(emits)
        for emit in emits:
            if emit.account is None:
                self._publish_public(emit)
            else:
                self._publish_private(emit)

    def _publish_public(self, emit: Emit) -> None:
        stream = emit.stream
        if stream.startswith("depth."):
            if self.faults.depth_gap():
                return
            symbol = stream[len("depth."):]
            for window in DEPTH_WINDOWS_MS:
                if self.subs.has(f"depth.{window}.{symbol}"):
                    agg = self._aggregators.get((window, symbol))
                    if agg is None:
                        agg = self._aggregators[(window, symbol)] = DepthAggregator(symbol)
                    agg.add(emit.data)
        self._deliver(stream, stream, emit.data)

    def _publish_private(self, emit: Emit) -> None:
        assert emit.account is not None
        self._deliver(Subscriptions.key(emit.stream, emit.account), emit.stream, emit.data)
        symbol = emit.data.get("s")
        if isinstance(symbol, str):
            named = f"{emit.stream}.{symbol}"
            self._deliver(Subscriptions.key(named, emit.account), named, emit.data)

    def _deliver(self, key: str, stream: str, data: Mapping[str, Any]) -> None:
        members = self.subs.members(key)
        if not members:
            return
        if self.faults.stalled(stream):
            self.faults.count("frames_stalled", len(members))
            return
        frame = _dumps({"stream": stream, "data": data}).decode()
        if self.faults.malform():
            frame = frame[: len(frame) // 2]
        for conn in list(members):
            self._push(conn, frame)

    def _push(self, conn: Connection, frame: str) -> None:
        if conn.push(frame):
            self._counts["frames_queued"] += 1
        else:
            self._counts["ws_dropped_slow"] += 1
            self.subs.remove_all(conn)
            log.warning("dropped WebSocket connection %d: outbox of %d frames overflowed", conn.id,
                        self.cfg.ws_queue_size)

    # -- ASGI entry point ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    # -- HTTP ---------------------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._counts["rest_requests"] += 1
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > _MAX_BODY:
                await self._respond(send, 413, b"payload too large", text=True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        client = scope.get("client")
        req = _Request(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            body=b"".join(chunks),
            client=str(client[0]) if client else "-",
        )
        delay = self.faults.rest_delay_s()
        if delay:
            await trio.sleep(delay)
        try:
            status, payload = await self._handle(req)
        except _Reply as reply:
            if reply.status >= 400:
                self._counts["rest_errors"] += 1
            await self._respond(send, reply.status, reply.body, text=reply.text)
            return
        except _LostResponse as lost:
            # The order executed; the reply is lost: headers go out, the body never does, the socket closes.
            await send({"type": "http.response.start", "status": 200,
                        "headers": [*_JSON_HEADERS, (b"content-length", str(len(lost.body)).encode())]})
            return
        # PATCH /account answers 200 with an empty body.
        await self._respond(send, status, b"" if payload is None else _dumps(payload))

    async def _respond(self, send: Send, status: int, body: bytes, *, text: bool = False) -> None:
        headers = _TEXT_HEADERS if text else _JSON_HEADERS
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, req: _Request) -> tuple[int, Any]:
        fault = self.faults.rest_error()
        if fault == 503:
            raise _api_error(503, "SERVER_ERROR", "Unknown error, please check your request or try again later.")
        if fault == 429:
            raise _api_error(429, "TOO_MANY_REQUESTS", "Too many requests")
        if req.method == "GET" and req.path == "/api/v1/ping":
            raise _Reply(200, b"pong", text=True)
        if req.method == "GET" and req.path == "/api/v1/time":
            raise _Reply(200, str(self.clock.host_now_ms(self.faults.skew_ms())).encode(), text=True)
        methods = _ROUTES.get(req.path)
        if methods is None:
            raise _Reply(404, b"not found", text=True)
        route = methods.get(req.method)
        if route is None:
            raise _Reply(405, b"method not allowed", text=True)
        client = req.headers.get("x-api-key", req.client) if route.instruction else req.client
        if self.cfg.rate_limits and not self.limiter.allow(client, history=route.history, now_s=trio.current_time()):
            raise _api_error(429, "TOO_MANY_REQUESTS", "Too many requests, please slow down")
        key = self._authenticate(req, route) if route.instruction else None
        try:
            return await route.handler(self, req, key)
        except SimApiError as exc:
            raise _api_error(exc.status, exc.code, exc.message) from None

    # -- signatures ---------------------------------------------------------------------------------------

    def _authenticate(self, req: _Request, route: _Route) -> str:
        # The body is parsed keeping every number's literal text: the signature is over what was sent.
        body: Any = None
        if req.method != "GET" and req.body.strip():
            try:
                body = _literal_body(req.body)
            except ValueError as exc:
                raise _parse_error(f"parse request payload error: {exc}") from None
        now_ms = self.clock.host_now_ms(self.faults.skew_ms())
        outcome = verify_request(req.method, req.path, req.query, body, req.headers, now_ms)
        if isinstance(outcome, VerifyFailure):
            self._counts["signature_failures"] += 1
            raise _api_error(outcome.status, outcome.code, outcome.message)
        if self._api_keys and outcome not in self._api_keys:
            self._counts["signature_failures"] += 1
            raise _api_error(401, "UNAUTHORIZED", "Invalid API key")
        return outcome

    # -- WebSocket ----------------------------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if self.faults.refusing():
            await send({"type": "websocket.close", "code": 1013})
            return
        await send({"type": "websocket.accept"})
        self._next_conn_id += 1
        conn = Connection(self._next_conn_id, self.cfg.ws_queue_size)
        self.connections.add(conn)
        self._counts["ws_opened"] += 1
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ws_writer, conn, send, nursery.cancel_scope)
                await self._ws_reader(conn, receive)
                nursery.cancel_scope.cancel(reason="client disconnected")
        finally:
            conn.close(1000)
            self.subs.remove_all(conn)
            self.connections.discard(conn)

    async def _ws_writer(self, conn: Connection, send: Send, scope: trio.CancelScope) -> None:
        async with conn.outbox_receive:
            async for frame in conn.outbox_receive:
                if conn.closed and conn.close_code != 1000:
                    break
                await send({"type": "websocket.send", "text": frame})
                self._counts["frames_sent"] += 1
                conn.frame_sent()
        await send({"type": "websocket.close", "code": conn.close_code})
        scope.cancel(reason="server closed the connection")

    async def _ws_reader(self, conn: Connection, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] != "websocket.receive":
                continue
            raw = message.get("text")
            if raw is None:
                raw = (message.get("bytes") or b"").decode("utf-8", "replace")
            self._ws_command(conn, raw)

    def _ws_command(self, conn: Connection, raw: str) -> None:
        try:
            command = json.loads(raw)
        except ValueError:
            command = None
        if (not isinstance(command, dict) or command.get("method") not in ("SUBSCRIBE", "UNSUBSCRIBE")
                or not isinstance(command.get("params"), list)
                or not all(isinstance(p, str) for p in command["params"])):
            self._ws_error(conn, StreamError(4002, "Parse error"))
            return
        streams: list[str] = command["params"]
        if command["method"] == "UNSUBSCRIBE":
            for stream in streams:
                try:
                    private, _ = classify_stream(stream)
                except StreamError:
                    continue
                self.subs.remove(conn, stream, conn.account if private else None)
            return
        valid: list[tuple[str, bool]] = []
        for stream in streams:
            try:
                private, _ = classify_stream(stream)
            except StreamError as exc:
                self._ws_error(conn, exc)
                continue
            valid.append((stream, private))
        if any(private for _, private in valid):
            account = self._ws_authenticate(command.get("signature"))
            if account is None:
                self._ws_error(conn, StreamError(4003, "Invalid signature"))
                valid = [(s, p) for s, p in valid if not p]
            else:
                conn.account = account
        for stream, private in valid:
            added = self.subs.add(conn, stream, conn.account if private else None)
            if added and private and stream.startswith("account.positionUpdate"):
                self._send_position_snapshot(conn, stream)

    def _ws_authenticate(self, signature: Any) -> str | None:
        if not isinstance(signature, list) or len(signature) != 4 or not all(isinstance(s, str) for s in signature):
            return None
        key, sig, stamp, window = (str(part) for part in signature)
        try:
            timestamp_ms = int(stamp)
            window_ms = int(window)
        except ValueError:
            return None
        if not 0 < window_ms <= MAX_WINDOW_MS:
            return None
        # The text received is what was signed (stamp/window arrive as strings).
        message = f"instruction=subscribe&timestamp={stamp}&window={window}"
        if not verify_signature(key, message, sig):
            return None
        if self._api_keys and key not in self._api_keys:
            return None
        now_ms = self.clock.host_now_ms(self.faults.skew_ms())
        if not timestamp_ms <= now_ms <= timestamp_ms + window_ms:
            return None
        return key

    def _send_position_snapshot(self, conn: Connection, stream: str) -> None:
        assert conn.account is not None
        symbol = stream[len("account.positionUpdate."):] if stream != "account.positionUpdate" else None
        for emit in self.core.position_snapshot_emits(conn.account):
            if symbol is not None and emit.data.get("s") != symbol:
                continue
            self._push(conn, _dumps({"stream": stream, "data": emit.data}).decode())

    def _ws_error(self, conn: Connection, error: StreamError) -> None:
        self._push(conn, _dumps(error.frame()).decode())


class _LostResponse(Exception):
    def __init__(self, body: bytes) -> None:
        super().__init__("response lost")
        self.body = body


# -- REST handlers ----------------------------------------------------------------------------------------


async def _status(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    return 200, app.core.status()


async def _markets(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    return 200, app.core.markets()


async def _market(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    return 200, app.core.market(_required(req, "symbol"))


async def _assets(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    return 200, app.core.assets()


async def _securities(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    return 200, app.core.securities()


async def _ticker(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    return 200, app.core.ticker(_required(req, "symbol"), req.query.get("interval", "1d"))


async def _tickers(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    return 200, app.core.tickers()


async def _depth(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    symbol = _required(req, "symbol")
    text = req.query.get("limit", "1000")
    if text not in _DEPTH_LIMITS:
        raise _parse_error('failed to parse parameter `limit`: failed to parse "DepthLimit": Expect a valid '
                           "enumeration value.")
    return 200, app.core.depth(symbol, int(text))


async def _klines(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    symbol = _required(req, "symbol")
    interval = _required(req, "interval")
    start_s = _int_param(req, "startTime", what="i64")
    if start_s is None:
        raise _parse_error('failed to parse parameter `startTime`: Type "integer(int64)" expects an input value.')
    end_s = _int_param(req, "endTime", what="i64")
    return 200, app.core.klines(symbol, interval, start_s, end_s, app.market_now_us)


async def _trades(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    return 200, app.core.trades(_required(req, "symbol"), _limit(req, default=100, maximum=1000))


async def _trades_history(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    symbol = _required(req, "symbol")
    limit = _limit(req, default=100, maximum=1000)
    offset = _int_param(req, "offset", default=0) or 0
    return 200, app.core.trades(symbol, limit + offset)[offset:]


async def _mark_prices(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    return 200, app.core.mark_prices(req.query.get("symbol"))


async def _open_interest(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    return 200, app.core.open_interest(req.query.get("symbol"), app.market_now_us)


async def _funding_rates(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    symbol = _required(req, "symbol")
    limit = _limit(req, default=100, maximum=10000)
    offset = _int_param(req, "offset", default=0) or 0
    return 200, app.core.funding_rates(symbol, limit, offset)


async def _capital(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    return 200, app.core.capital(key)


async def _collateral(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    return 200, app.core.collateral(key)


async def _account(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    return 200, app.core.account(key)


async def _update_account(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    app.core.update_account(key, _object_body(req, "AccountUpdatePayload"))
    return 200, None


async def _positions(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    return 200, app.core.positions(key, req.query.get("symbol"))


async def _get_order(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    return 200, app.core.get_order(key, req.query)


async def _open_orders(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    return 200, app.core.open_orders(key, req.query)


def _object_body(req: _Request, payload_type: str) -> dict[str, Any]:
    if not req.body.strip():
        return {}
    try:
        body = _typed_body(req.body)
    except ValueError as exc:
        raise _parse_error(f"parse request payload error: {exc}") from None
    if not isinstance(body, dict):
        raise _parse_error(f'parse request payload error: Expected input type "{payload_type}", found '
                           f"{type(body).__name__}")
    return body


def _takes_liquidity(order: Mapping[str, Any]) -> bool:
    return order.get("postOnly") is not True


async def _speed_bump(app: SimApp, orders: list[dict[str, Any]]) -> None:
    if app.cfg.taker_speed_bump_ms and any(_takes_liquidity(o) for o in orders):
        await trio.sleep(app.cfg.taker_speed_bump_ms / 1000.0)


async def _execute_order(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    body = _object_body(req, "OrderExecutePayload")
    await _speed_bump(app, [body])
    result, emits = app.core.execute_order(key, body, app.market_now_us)
    app.publish(emits)
    if app.faults.lose_order_response():
        raise _LostResponse(_dumps(result))
    return 200, result


async def _execute_orders(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    try:
        body = _typed_body(req.body)
    except ValueError as exc:
        raise _parse_error(f"parse request payload error: {exc}") from None
    if not isinstance(body, list) or not all(isinstance(o, dict) for o in body):
        raise _parse_error('parse request payload error: Expected input type "Vec<OrderExecutePayload>"')
    await _speed_bump(app, body)
    results, emits = app.core.execute_orders(key, body, app.market_now_us)
    app.publish(emits)
    if app.faults.lose_order_response():
        raise _LostResponse(_dumps(results))
    return 200, results


async def _cancel_order(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    result, emits = app.core.cancel_order(key, _object_body(req, "OrderCancelPayload"), app.market_now_us)
    app.publish(emits)
    return 200, result


async def _cancel_all(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    results, emits = app.core.cancel_all(key, _object_body(req, "OrderCancelAllPayload"), app.market_now_us)
    app.publish(emits)
    return 200, results


async def _order_history(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    return 200, app.core.order_history(key, req.query)


async def _fill_history(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    return 200, app.core.fill_history(key, req.query)


async def _funding_history(app: SimApp, req: _Request, key: str | None) -> tuple[int, Any]:
    assert key is not None
    return 200, app.core.funding_history(key, req.query)


_ROUTES: dict[str, dict[str, _Route]] = {
    "/api/v1/status": {"GET": _Route(handler=_status)},
    "/api/v1/markets": {"GET": _Route(handler=_markets)},
    "/api/v1/market": {"GET": _Route(handler=_market)},
    "/api/v1/assets": {"GET": _Route(handler=_assets)},
    "/api/v1/securities": {"GET": _Route(handler=_securities)},
    "/api/v1/ticker": {"GET": _Route(handler=_ticker)},
    "/api/v1/tickers": {"GET": _Route(handler=_tickers)},
    "/api/v1/depth": {"GET": _Route(handler=_depth)},
    "/api/v1/klines": {"GET": _Route(handler=_klines, history=True)},
    "/api/v1/trades": {"GET": _Route(handler=_trades)},
    "/api/v1/trades/history": {"GET": _Route(handler=_trades_history, history=True)},
    "/api/v1/markPrices": {"GET": _Route(handler=_mark_prices)},
    "/api/v1/openInterest": {"GET": _Route(handler=_open_interest)},
    "/api/v1/fundingRates": {"GET": _Route(handler=_funding_rates)},
    "/api/v1/capital": {"GET": _Route(handler=_capital, instruction="balanceQuery")},
    "/api/v1/capital/collateral": {"GET": _Route(handler=_collateral, instruction="collateralQuery")},
    "/api/v1/account": {
        "GET": _Route(handler=_account, instruction="accountQuery"),
        "PATCH": _Route(handler=_update_account, instruction="accountUpdate"),
    },
    "/api/v1/position": {"GET": _Route(handler=_positions, instruction="positionQuery")},
    "/api/v1/order": {
        "GET": _Route(handler=_get_order, instruction="orderQuery"),
        "POST": _Route(handler=_execute_order, instruction="orderExecute"),
        "DELETE": _Route(handler=_cancel_order, instruction="orderCancel"),
    },
    "/api/v1/orders": {
        "GET": _Route(handler=_open_orders, instruction="orderQueryAll"),
        "POST": _Route(handler=_execute_orders, instruction="orderExecute"),
        "DELETE": _Route(handler=_cancel_all, instruction="orderCancelAll"),
    },
    "/wapi/v1/history/orders": {"GET": _Route(handler=_order_history, instruction="orderHistoryQueryAll")},
    "/wapi/v1/history/fills": {"GET": _Route(handler=_fill_history, instruction="fillHistoryQueryAll")},
    "/wapi/v1/history/funding": {"GET": _Route(handler=_funding_history, instruction="fundingHistoryQueryAll")},
}


# -- serving ------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SimHandle:
    """What ``serve_simulator`` reports once listening: where it is and how to steer it."""

    host: str
    port: int
    app: SimApp
    firehose_port: int | None = None

    @property
    def firehose_url(self) -> str | None:
        """The benchmark firehose endpoint, when ``firehose_rate`` is set."""
        if self.firehose_port is None:
            return None
        return f"ws://{_url_host(self.host)}:{self.firehose_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{_url_host(self.host)}:{self.port}"

    @property
    def core(self) -> SimExchange:
        return self.app.core

    @property
    def faults(self) -> Faults:
        return self.app.faults

    @property
    def clock(self) -> SimClock:
        return self.app.clock

    def statistics(self) -> ServerStats:
        return self.app.statistics()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _wall_us() -> int:
    return time.time_ns() // 1000


def build_core(cfg: SimConfig, time_shift_us: int) -> SimExchange:
    """The pure exchange core for ``cfg``, re-stamped by ``time_shift_us``."""
    # SimConfigLike declares plain (settable) attributes; the frozen config satisfies it for reading.
    return SimExchange(SimParams.from_config(cast("SimConfigLike", cfg), time_shift_us=time_shift_us))


async def serve_simulator(
    cfg: SimConfig,
    *,
    task_status: trio.TaskStatus[SimHandle] = trio.TASK_STATUS_IGNORED,
    wall_us: Callable[[], int] = _wall_us,
    core_factory: Callable[[SimConfig, int], SimExchange] = build_core,
) -> NoReturn:
    """Serve the simulated exchange until cancelled; report a ``SimHandle`` once listening."""
    clock = SimClock(start_historical_us=iso_to_us(cfg.start), speed=cfg.speed,
                     keep_historical_time=cfg.keep_historical_time, wall_us=wall_us, elapsed_s=trio.current_time)
    core = core_factory(cfg, clock.time_shift_us)
    faults = Faults(cfg.faults, seed=cfg.seed)
    app = SimApp(cfg, core, clock, faults)
    hconfig = hypercorn.config.Config()
    hconfig.bind = [f"{_url_host(cfg.host)}:{cfg.port}"]
    hconfig.websocket_ping_interval = cfg.ping_interval_s
    hconfig.graceful_timeout = 0.5
    hconfig.errorlog = logging.getLogger("engine.sim.hypercorn")
    hconfig.accesslog = None
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(hypercorn.trio.serve, app, hconfig)
        port = int(binds[0].rpartition(":")[2])
        nursery.start_soon(app.run_market)
        firehose_port: int | None = None
        if cfg.firehose_rate:
            firehose_port = await nursery.start(partial(
                serve_firehose, cfg.host, cfg.firehose_port, rate=cfg.firehose_rate, symbol=cfg.firehose_symbol,
                host_now_us=clock.host_now_us, stats=app.firehose_stats))
        nursery.start_soon(app.run_fault_timers)
        for window in DEPTH_WINDOWS_MS:
            nursery.start_soon(app.run_depth_windows, window)
        handle = SimHandle(host=cfg.host, port=port, app=app, firehose_port=firehose_port)
        if not clock.unbounded:
            # The market clock has run since it was built (loading the candles and binding take a while); catch
            # the core up now so a REST answer before the stepper's first wake is not from the replay's start
            # (at 2000x that first state was ~17 market minutes old and 2% away from the first live frames).
            app.step_to(min(clock.market_now_us(), core.end_time_us()))
        log.info("simulator listening on %s (REST) and %s (WebSocket)", handle.rest_url, handle.ws_url)
        task_status.started(handle)
        await trio.sleep_forever()
    raise AssertionError("unreachable")
