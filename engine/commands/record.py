"""``python -m engine record``: write every raw WebSocket frame of the public streams to a capture file.

Owns the command's arguments, the choice of streams and endpoint, and the recording loop (the edge I/O: one
trio-websocket client and one file). The file format is ``engine.capture``.

Invariants: every frame received is written, undecoded and unchanged, with its wall and trio clock receive
times (the recorder never decodes-and-drops); the recording ends after ``--duration`` seconds, when the
server closes the connection, or on SIGINT/SIGTERM, and in every case the file is flushed and closed with
the frames received so far; with ``exchange = simulator`` and no URL configured or given, the embedded
simulator is started from ``[sim]`` for the recording and stopped after it.
"""

from __future__ import annotations

import argparse
import math
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import IO, Final
from urllib.parse import urlsplit

import attrs
import trio
import trio_websocket

from engine.backpack.events import KLINE_INTERVALS
from engine.backpack.requests import depth_stream, kline_stream, subscribe_frame
from engine.capture import CAPTURE_VERSION, CaptureHeader, header_line, open_capture_for_writing, record_line
from engine.cli import register_command
from engine.config import EngineConfig, resolve_config
from engine.errors import FeedDisconnected, LocalProtocolError
from engine.market.config import FeedConfig
from engine.runtime.shutdown import restore_default_sigint
from engine.sim.server import serve_simulator

__all__ = [
    "STREAM_KINDS",
    "RecordResult",
    "build_streams",
    "default_kinds",
    "record",
    "record_arguments",
    "record_capture",
    "run_record_command",
]

#: Stream kinds ``--streams`` understands; a kind expands to one stream per symbol (``liquidation`` is the
#: single all-market stream, ``kline`` one per configured interval, ``markPrice`` perpetuals only).
STREAM_KINDS: Final = ("ticker", "bookTicker", "depth", "trade", "kline", "markPrice", "liquidation")
_LIQUIDATION_STREAM: Final = "liquidation"


@attrs.frozen(kw_only=True)
class RecordResult:
    """How a recording went: where, how much, and why it stopped."""

    path: Path
    url: str
    streams: tuple[str, ...]
    frames: int
    duration_s: float
    stopped: str  # "duration", "signal" or "closed by server (<code> <reason>)"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def default_kinds(feed: FeedConfig) -> tuple[str, ...]:
    """The stream kinds the engine's feed subscribes with this [feed] section."""
    kinds: list[str] = []
    if feed.auto_subscribe_ticker:
        kinds.append("ticker")
    if feed.auto_subscribe_depth:
        kinds += ["bookTicker", "depth"]
    if feed.subscribe_trades:
        kinds.append("trade")
    kinds += [f"kline.{interval}" for interval in feed.kline_intervals]
    if feed.subscribe_mark_price:
        kinds.append("markPrice")
    if feed.subscribe_liquidations:
        kinds.append("liquidation")
    return tuple(kinds)


def build_streams(symbols: Sequence[str], kinds: Sequence[str], kline_intervals: Sequence[str]) -> tuple[str, ...]:
    """Stream names for ``symbols`` from ``kinds``, in order and without duplicates.

    A kind is one of ``STREAM_KINDS``, ``kline.<interval>``, or a full stream name (anything else with a
    dot, taken as is). Raises ``LocalProtocolError`` for an unknown kind or kline interval.
    """
    out: list[str] = []

    def add(name: str) -> None:
        if name not in out:
            out.append(name)

    for kind in kinds:
        if kind == "liquidation":
            add(_LIQUIDATION_STREAM)
        elif kind == "kline":
            for symbol in symbols:
                for interval in kline_intervals:
                    add(kline_stream(interval, symbol))
        elif kind.startswith("kline.") and kind.count(".") == 1:
            interval = kind.partition(".")[2]
            if interval not in KLINE_INTERVALS:
                raise LocalProtocolError(f"unknown kline interval {interval!r}")
            for symbol in symbols:
                add(kline_stream(interval, symbol))
        elif kind == "depth":
            for symbol in symbols:
                add(depth_stream(symbol))
        elif kind == "markPrice":
            # Mark prices exist for perpetuals only; a spot markPrice stream would stay silent.
            for symbol in symbols:
                if symbol.endswith("_PERP"):
                    add(f"markPrice.{symbol}")
        elif kind in STREAM_KINDS:
            for symbol in symbols:
                add(f"{kind}.{symbol}")
        elif "." in kind:
            add(kind)
        else:
            raise LocalProtocolError(
                f"unknown stream kind {kind!r}; use one of {', '.join(STREAM_KINDS)}, kline.<interval> "
                "or a full stream name")
    return tuple(out)


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel(reason="stop requested")


class _Sink:
    """The open capture file and how many frames went into it (kept outside the loop so that a cancelled
    loop still reports its count)."""

    def __init__(self, out: IO[str], wall_ms: Callable[[], int]) -> None:
        self.out = out
        self.wall_ms = wall_ms
        self.frames = 0

    def write(self, frame: str | bytes) -> None:
        # A plain buffered write: the file object batches into large OS writes, which costs far less than
        # handing every frame to a worker thread (trio.wrap_file) at thousands of frames per second.
        self.out.write(record_line(self.wall_ms(), trio.current_time(), frame))
        self.frames += 1


async def _receive_all(ws: trio_websocket.WebSocketConnection, sink: _Sink, subscribe: str) -> str:
    """Subscribe, then write frames until the server closes; returns why it stopped."""
    sent = False
    while True:
        try:
            if not sent:
                await ws.send_message(subscribe)
                sent = True
            frame = await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            reason = exc.reason
            detail = "" if reason is None else f" ({reason.code} {reason.reason or reason.name})".rstrip()
            return f"closed by server{detail}"
        sink.write(frame)


def _sole_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one real error inside a nursery's group (Cancelled siblings dropped), else the group itself."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else group


async def _record_into(ws: trio_websocket.WebSocketConnection, sink: _Sink, subscribe: str, *, deadline: float,
                       stop: trio.Event | None) -> str:
    """Subscribe and write frames until the deadline, ``stop``, or the server closes; returns why it stopped."""
    stopped = "duration"
    try:
        with trio.CancelScope(deadline=deadline) as scope:
            async with trio.open_nursery() as nursery:
                if stop is not None:
                    nursery.start_soon(_cancel_when_set, stop, scope)
                stopped = await _receive_all(ws, sink, subscribe)
                scope.cancel(reason="server closed the connection")
    except BaseExceptionGroup as group:
        # Callers see the one failure (a write error, a closed connection) as itself, not wrapped.
        raise _sole_error(group) from None
    if stop is not None and stop.is_set() and stopped == "duration":
        stopped = "signal"
    return stopped


def _split_ws_url(url: str) -> tuple[str, int, str, bool]:
    """(host, port, resource, tls) of a ws:// or wss:// URL; raises FeedDisconnected for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise FeedDisconnected(f"cannot connect to {url}: not a ws:// or wss:// URL")
    tls = parts.scheme == "wss"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError as exc:
        raise FeedDisconnected(f"cannot connect to {url}: {exc}") from exc
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, resource, tls


async def _open_stream(host: str, port: int, tls: bool) -> trio.SocketStream | trio.SSLStream[trio.SocketStream]:
    if tls:
        return await trio.open_ssl_over_tcp_stream(host, port, ssl_context=ssl.create_default_context())
    return await trio.open_tcp_stream(host, port)


async def record_capture(
    path: Path,
    *,
    ws_url: str,
    streams: Sequence[str],
    duration_s: float,
    stop: trio.Event | None = None,
    connect_timeout_s: float = 10.0,
    wall_ms: Callable[[], int] = _wall_ms,
) -> RecordResult:
    """Connect to ``ws_url``, subscribe ``streams`` and write every frame to ``path`` until ``duration_s``
    passes, ``stop`` is set or the server closes.

    Raises ``FeedDisconnected`` when the connection cannot be opened (no file is created then) and
    ``OSError`` when the file cannot be written; the file is always closed, so a partial capture stays
    readable.
    """
    subscribe = subscribe_frame(streams)
    host, port, resource, tls = _split_ws_url(ws_url)
    try:
        with trio.fail_after(connect_timeout_s):
            stream = await _open_stream(host, port, tls)
    except (OSError, trio.TooSlowError) as exc:
        # The one boundary where connection failures become ours (here and for the handshake below).
        raise FeedDisconnected(f"cannot connect to {ws_url}: {str(exc) or type(exc).__name__}") from exc
    # The TCP stream is ours to close: trio-websocket 0.12 leaves a client socket open after a
    # server-initiated close (it waits for a TCP close it never acts on).
    try:
        async with trio.open_nursery() as nursery:
            try:
                with trio.fail_after(connect_timeout_s):
                    ws = await trio_websocket.wrap_client_stream(nursery, stream, host, resource)
            except (OSError, trio_websocket.HandshakeError, trio.TooSlowError) as exc:
                raise FeedDisconnected(f"cannot connect to {ws_url}: WebSocket handshake failed: "
                                       f"{str(exc) or type(exc).__name__}") from exc
            try:
                with open_capture_for_writing(path) as out:
                    sink = _Sink(out, wall_ms)
                    start_mono = trio.current_time()
                    out.write(header_line(CaptureHeader(version=CAPTURE_VERSION, url=ws_url,
                                                        streams=tuple(streams), start_ms=wall_ms(),
                                                        start_mono=start_mono)))
                    stopped = await _record_into(ws, sink, subscribe, deadline=start_mono + duration_s,
                                                 stop=stop)
                    duration = trio.current_time() - start_mono
            finally:
                with trio.move_on_after(1.0, shield=True):
                    await ws.aclose()
    except BaseExceptionGroup as group:
        raise _sole_error(group) from None
    finally:
        await stream.aclose()
    return RecordResult(path=path, url=ws_url, streams=tuple(streams), frames=sink.frames,
                        duration_s=duration, stopped=stopped)


async def record(
    cfg: EngineConfig,
    path: Path,
    *,
    duration_s: float,
    ws_url: str | None = None,
    symbols: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    stop: trio.Event | None = None,
) -> RecordResult:
    """Record from ``ws_url``, else the configured endpoint, else an embedded simulator built from ``[sim]``.

    ``symbols`` default to the strategy's market, ``kinds`` to what ``[feed]`` subscribes.
    """
    chosen_symbols = tuple(symbols) if symbols else (cfg.strategy.market.symbol,)
    streams = build_streams(chosen_symbols, kinds if kinds else default_kinds(cfg.feed), cfg.feed.kline_intervals)
    if ws_url is not None:
        return await record_capture(path, ws_url=ws_url, streams=streams, duration_s=duration_s, stop=stop,
                                    connect_timeout_s=cfg.feed.connect_timeout_s)
    endpoints = cfg.engine.endpoints()
    if endpoints is not None:
        return await record_capture(path, ws_url=endpoints[1], streams=streams, duration_s=duration_s,
                                    stop=stop, connect_timeout_s=cfg.feed.connect_timeout_s)
    try:
        async with trio.open_nursery() as nursery:
            handle = await nursery.start(serve_simulator, cfg.sim)
            result = await record_capture(path, ws_url=handle.ws_url, streams=streams, duration_s=duration_s,
                                          stop=stop, connect_timeout_s=cfg.feed.connect_timeout_s)
            nursery.cancel_scope.cancel(reason="recording finished")
    except BaseExceptionGroup as group:
        raise _sole_error(group) from None
    return result


# --- the command ------------------------------------------------------------------------------------------


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds; got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds; got {text}")
    return value


def _csv(text: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list; got {text!r}")
    return items


def record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=_duration, required=True, metavar="S",
                        help="seconds to record (SIGINT/SIGTERM stop earlier, keeping what was recorded)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="capture file (JSON lines; gzip-compressed when FILE ends in .gz)")
    parser.add_argument("--ws-url", default=None, metavar="URL",
                        help="WebSocket to record; default: the configured one, or an embedded simulator "
                             "from [sim] when exchange = simulator and no URL is configured")
    parser.add_argument("--symbols", type=_csv, default=None, metavar="SYM,...",
                        help="markets to record (default: the strategy's market)")
    parser.add_argument("--streams", type=_csv, default=None, metavar="KIND,...",
                        help=f"stream kinds ({', '.join(STREAM_KINDS)}, kline.<interval>) or full stream "
                             "names; default: what [feed] subscribes")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="engine config (default: ./config.toml, else the built-in defaults)")


async def _record_until_signal(cfg: EngineConfig, args: argparse.Namespace) -> RecordResult:
    stop = trio.Event()

    async def watch(rx: AsyncIterator[int]) -> None:
        async for signum in rx:
            print(f"received {signal.Signals(signum).name}; closing the capture", file=sys.stderr)
            stop.set()

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as rx:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, rx)
                result = await record(cfg, Path(args.out), duration_s=args.duration, ws_url=args.ws_url,
                                      symbols=args.symbols, kinds=args.streams, stop=stop)
                nursery.cancel_scope.cancel(reason="recording finished")
        except BaseExceptionGroup as group:
            raise _sole_error(group) from None
    return result


def run_record_command(args: argparse.Namespace) -> int:
    cfg, _source = resolve_config(args.config)
    try:
        build_streams(args.symbols or (cfg.strategy.market.symbol,), args.streams or default_kinds(cfg.feed),
                      cfg.feed.kline_intervals)
    except LocalProtocolError as exc:
        print(f"error: --streams: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if not out.parent.is_dir():
        print(f"error: --out: directory {out.parent} does not exist", file=sys.stderr)
        return 2
    # A background child of a non-interactive shell starts with SIGINT ignored; put the default back so
    # that trio's signal receiver (and Ctrl-C) work.
    restore_default_sigint()
    try:
        result = trio.run(_record_until_signal, cfg, args)
    except FeedDisconnected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"recorded {result.frames} frames from {result.url} in {result.duration_s:.1f} s to {result.path} "
          f"({len(result.streams)} streams; stopped: {result.stopped})")
    return 0


register_command("record", record_arguments, run_record_command,
                 help="record raw WebSocket frames of the public streams to a capture file")
