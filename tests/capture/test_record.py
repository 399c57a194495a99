"""Recording from the real simulator on 127.0.0.1: every subscribed stream is captured, contiguous, stoppable."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from engine.capture import read_capture, summarize
from engine.commands.record import build_streams, default_kinds, record, record_capture
from engine.config import EngineConfig
from engine.errors import FeedDisconnected, LocalProtocolError
from engine.market.config import FeedConfig
from engine.sim.config import SimConfig
from engine.sim.server import SimHandle, serve_simulator

PERP = "BTC_USDC_PERP"
KINDS = ("ticker", "bookTicker", "depth", "trade", "kline.1m", "markPrice")


def _fast_sim() -> SimConfig:
    return SimConfig(port=0, speed=600.0, step_interval_s=0.05, taker_speed_bump_ms=0)


async def test_record_from_embedded_simulator_captures_every_stream(tmp_path: Path) -> None:
    """The embedded simulator's capture has frames on every subscribed stream, none undecodable, no depth gap."""
    cfg = EngineConfig(sim=_fast_sim())
    path = tmp_path / "sim.jsonl.gz"
    with trio.fail_after(30):
        result = await record(cfg, path, duration_s=2.0, symbols=(PERP,), kinds=KINDS)
    assert result.stopped == "duration"
    assert result.frames > 0
    head, items = read_capture(path)
    summary = summarize(head, items)
    expected = {f"ticker.{PERP}", f"bookTicker.{PERP}", f"depth.{PERP}", f"trade.{PERP}", f"kline.1m.{PERP}",
                f"markPrice.{PERP}"}
    assert set(head.streams) == expected
    assert head.url.startswith("ws://127.0.0.1:")
    assert set(summary.frames_by_stream) == expected
    assert summary.records == result.frames
    assert summary.decode_errors == {}
    assert summary.bad_lines == {}
    assert summary.depth_gaps == {}
    assert summary.frames_by_stream[f"depth.{PERP}"] >= 2


async def test_stop_event_ends_recording_early_with_a_readable_file(tmp_path: Path) -> None:
    """Setting the stop event (what SIGINT/SIGTERM do) ends a long recording promptly, file closed and readable."""
    path = tmp_path / "stopped.jsonl"
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        handle: SimHandle = await nursery.start(serve_simulator, _fast_sim())

        async def stop_soon() -> None:
            await trio.sleep(0.5)
            stop.set()

        nursery.start_soon(stop_soon)
        with trio.fail_after(10):
            result = await record_capture(path, ws_url=handle.ws_url, streams=[f"trade.{PERP}", f"ticker.{PERP}"],
                                          duration_s=3600, stop=stop)
        nursery.cancel_scope.cancel(reason="test finished")
    assert result.stopped == "signal"
    assert result.duration_s < 5
    head, items = read_capture(path)
    assert sum(1 for _ in items) == result.frames


async def test_connect_failure_is_feed_disconnected(tmp_path: Path) -> None:
    """A refused connection raises FeedDisconnected naming the URL, and no capture file is left behind."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    with trio.fail_after(10), pytest.raises(FeedDisconnected, match=f"ws://127.0.0.1:{port}"):
        await record_capture(tmp_path / "x.jsonl", ws_url=f"ws://127.0.0.1:{port}", streams=["ticker.X"],
                             duration_s=1)
    assert not (tmp_path / "x.jsonl").exists()


def test_default_streams_follow_the_feed_section() -> None:
    """Defaults expand [feed] per symbol: markPrice only for perps, one liquidation stream, klines per interval."""
    streams = build_streams(("BTC_USDC", PERP), default_kinds(FeedConfig(kline_intervals=("1m",))), ("1m",))
    assert streams == ("ticker.BTC_USDC", f"ticker.{PERP}", "bookTicker.BTC_USDC", f"bookTicker.{PERP}",
                       "depth.BTC_USDC", f"depth.{PERP}", "trade.BTC_USDC", f"trade.{PERP}",
                       "kline.1m.BTC_USDC", f"kline.1m.{PERP}", f"markPrice.{PERP}", "liquidation")
    assert build_streams(("A",), ("kline", "depth.200ms.A"), ("1m", "1h")) == ("kline.1m.A", "kline.1h.A",
                                                                              "depth.200ms.A")


@pytest.mark.parametrize("kind", ["bogus", "kline.7m"])
def test_unknown_stream_kind_is_refused(kind: str) -> None:
    """An unknown kind or kline interval raises LocalProtocolError naming it."""
    with pytest.raises(LocalProtocolError, match=kind.rpartition(".")[2]):
        build_streams(("A",), (kind,), ("1m",))
