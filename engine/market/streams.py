"""Which streams the feed subscribes and how silence on each is judged (pure).

Owns the mapping from :class:`~engine.market.config.FeedConfig` and a symbol list to stream names, the
SUBSCRIBE frames (the private one signed with a caller-supplied timestamp, protocol section 5.3), the stall
watch groups, and the classification of decode failures into a small, bounded set of reasons.

Invariants: every stream name follows section 5.2 (``<type>.<symbol>``, ``kline.<interval>.<symbol>``, the
all-market ``liquidation``); markPrice is only subscribed for perpetuals (the exchange is silent for other
symbols, which would read as a stall); activity-free streams (liquidation, private) are never watched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import attrs

from engine.backpack.events import KLINE_INTERVALS
from engine.backpack.signing import Signer, signing_string
from engine.market.config import FeedConfig

__all__ = [
    "PRIVATE_STREAMS",
    "Plan",
    "Watch",
    "classify_decode_error",
    "plan_streams",
    "private_subscribe_frame",
    "subscribe_frame",
    "watch_key",
]

PRIVATE_STREAMS = ("account.orderUpdate", "account.positionUpdate", "account.balanceUpdate")


@attrs.frozen(kw_only=True)
class Watch:
    """A stall watch: ``key`` must see a frame at least every ``limit_s`` seconds."""

    key: str
    limit_s: float


@attrs.frozen(kw_only=True)
class Plan:
    public: tuple[str, ...]
    private: tuple[str, ...]
    depth_symbols: tuple[str, ...]
    watches: tuple[Watch, ...]


def _is_perp(symbol: str) -> bool:
    return symbol.endswith("_PERP")


def plan_streams(cfg: FeedConfig, symbols: Sequence[str], *, private: bool) -> Plan:
    """The full subscription for one connection."""
    public: list[str] = []
    watches: list[Watch] = []
    for s in symbols:
        if cfg.auto_subscribe_ticker:
            public.append(f"ticker.{s}")
            watches.append(Watch(key=f"ticker.{s}", limit_s=cfg.ticker_stall_s))
        if cfg.auto_subscribe_depth:
            public += [f"bookTicker.{s}", f"depth.{s}"]
            watches += [Watch(key=f"bookTicker.{s}", limit_s=cfg.book_ticker_stall_s),
                        Watch(key=f"depth.{s}", limit_s=cfg.depth_stall_s)]
        if cfg.subscribe_trades:
            public.append(f"trade.{s}")
            watches.append(Watch(key=f"trade.{s}", limit_s=cfg.trades_stall_s))
        public += [f"kline.{i}.{s}" for i in cfg.kline_intervals]
        if cfg.kline_intervals:
            # Klines of every interval move together; one watch per symbol is enough.
            watches.append(Watch(key=f"kline.{s}", limit_s=cfg.kline_stall_s))
        if cfg.subscribe_mark_price and _is_perp(s):
            public.append(f"markPrice.{s}")
            watches.append(Watch(key=f"markPrice.{s}", limit_s=cfg.mark_price_stall_s))
    if cfg.subscribe_liquidations and symbols:
        public.append("liquidation")
    return Plan(
        public=tuple(public),
        private=PRIVATE_STREAMS if private and cfg.subscribe_private else (),
        depth_symbols=tuple(symbols) if cfg.auto_subscribe_depth else (),
        watches=tuple(watches),
    )


def watch_key(stream: str) -> str:
    """The stall-watch key a stream name feeds (``kline.1m.BTC_USDC`` -> ``kline.BTC_USDC``)."""
    if stream.startswith("kline."):
        parts = stream.split(".", 2)
        if len(parts) == 3:
            return f"kline.{parts[2]}"
    return stream


def subscribe_frame(streams: Sequence[str]) -> str:
    return json.dumps({"method": "SUBSCRIBE", "params": list(streams)}, separators=(",", ":"))


def private_subscribe_frame(streams: Sequence[str], signer: Signer, *, timestamp_ms: int, window_ms: int) -> str:
    """SUBSCRIBE for account streams, signed over ``instruction=subscribe&timestamp=..&window=..``."""
    signature = signer.sign(signing_string("subscribe", {}, timestamp_ms, window_ms))
    return json.dumps(
        {"method": "SUBSCRIBE", "params": list(streams),
         "signature": [signer.public_key_b64, signature, str(timestamp_ms), str(window_ms)]},
        separators=(",", ":"),
    )


_KNOWN_TYPES = frozenset({"ticker", "bookTicker", "depth", "trade", "kline", "markPrice", "openInterest",
                          "liquidation", "account"})
_KLINE_INTERVALS = KLINE_INTERVALS
_STREAM_IN_MESSAGE = re.compile(r"^'([A-Za-z]+)(?:\.([0-9a-z]+)(?=\.))?[^']*'")
_FIELD_IN_MESSAGE = re.compile(r"field '([^']{1,40})'")


def classify_decode_error(message: str) -> tuple[str, str]:
    """(stream type, reason) for a RemoteProtocolError message, from a bounded vocabulary.

    The message text carries values from the wire; counting by it would let a hostile peer grow our counters
    without bound, so only a known stream type (plus a known kline interval) and the field name are kept.
    """
    stream = "unknown"
    match = _STREAM_IN_MESSAGE.match(message)
    if match and match.group(1) in _KNOWN_TYPES:
        stream = match.group(1)
        if stream == "kline" and match.group(2) in _KLINE_INTERVALS:
            stream = f"kline.{match.group(2)}"
    if "not valid JSON" in message:
        return stream, "invalid json"
    if "unknown stream type" in message:
        return stream, "unknown stream"
    field = _FIELD_IN_MESSAGE.search(message)
    if field:
        return stream, f"bad field {field.group(1)}"
    if "lacks its symbol" in message:
        return stream, "stream without symbol"
    return stream, "malformed frame"
