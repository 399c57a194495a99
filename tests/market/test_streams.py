"""Stream planning, watch keys, signed private subscription, decode-failure classification and the purity rule."""

from __future__ import annotations

import ast
import json
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backpack.frames import decode_frame
from engine.backpack.signing import Signer, signing_string, verify_signature
from engine.errors import RemoteProtocolError
from engine.market.config import FeedConfig
from engine.market.streams import classify_decode_error, plan_streams, private_subscribe_frame, watch_key

REASONS = {"invalid json", "unknown stream", "stream without symbol", "malformed frame"}


def test_plan_has_one_watch_per_periodic_stream_and_none_for_liquidations() -> None:
    """Klines share one watch per symbol; liquidation and private streams are never watched."""
    plan = plan_streams(FeedConfig(), ["BTC_USDC_PERP"], private=True)
    keys = {w.key for w in plan.watches}
    assert keys == {"ticker.BTC_USDC_PERP", "bookTicker.BTC_USDC_PERP", "depth.BTC_USDC_PERP",
                    "trade.BTC_USDC_PERP", "kline.BTC_USDC_PERP", "markPrice.BTC_USDC_PERP"}
    assert "liquidation" in plan.public
    assert plan.private == ("account.orderUpdate", "account.positionUpdate", "account.balanceUpdate")
    assert watch_key("kline.15m.BTC_USDC_PERP") == "kline.BTC_USDC_PERP"


def test_private_subscription_verifies_with_the_given_timestamp() -> None:
    """The signed SUBSCRIBE carries key, signature, timestamp and window that verify per protocol 5.3."""
    signer, _ = Signer.generate()
    frame = json.loads(private_subscribe_frame(["account.orderUpdate"], signer, timestamp_ms=1750000000000,
                                               window_ms=5000))
    key, sig, ts, window = frame["signature"]
    assert (ts, window) == ("1750000000000", "5000")
    assert verify_signature(key, signing_string("subscribe", {}, 1750000000000, 5000), sig)


@pytest.mark.parametrize(("frame", "expected"), [
    ("{nope", ("unknown", "invalid json")),
    ('{"stream":"bogus.X","data":{}}', ("unknown", "unknown stream")),
    ('{"stream":"ticker.BTC_USDC","data":{"e":"ticker","E":1,"s":"BTC_USDC","c":7}}', ("ticker", None)),
    ('{"stream":"kline.1m.BTC_USDC","data":{"e":"kline"}}', ("kline.1m", None)),
])
def test_classification_of_real_decoder_messages(frame: str, expected: tuple[str, str | None]) -> None:
    """Messages from decode_frame map to the stream type and a bounded reason."""
    with pytest.raises(RemoteProtocolError) as info:
        decode_frame(frame)
    stream, reason = classify_decode_error(str(info.value))
    assert stream == expected[0]
    if expected[1] is None:
        assert reason.startswith("bad field ")
    else:
        assert reason == expected[1]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_classification_is_bounded_for_any_input(text: str) -> None:
    """Whatever the message, the stream label and reason stay short and from a fixed shape."""
    stream, reason = classify_decode_error(text)
    assert len(stream) <= 40
    assert reason in REASONS or (reason.startswith("bad field ") and len(reason) <= 50)


def test_pure_market_core_imports_no_io() -> None:
    """engine/market never imports trio, httpx, trio_websocket or time (I/O lives in actors/)."""
    root = pathlib.Path(__file__).resolve().parents[2] / "engine" / "market"
    banned = {"trio", "httpx", "trio_websocket", "time", "socket"}
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.name} imports {name}"
