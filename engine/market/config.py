"""Configuration sections of the real-time data layer: ``[feed]`` (the WebSocket feed actor) and ``[cache]``
(the price cache actor). Pure declarations (no I/O).

Invariants checked at construction: depth levels are one of the exchange's REST depth limits, kline intervals
are ones the exchange serves and we aggregate, every duration is positive, the cached-value limit is at least
the live limit, and the REST poll budget stays under the exchange's documented rate limits (2000 requests per
minute overall, 30 per minute on historical endpoints such as klines).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs

from engine.confspec import at_least, greater_than, in_range, one_of, setting

__all__ = [
    "CANDLE_INTERVALS",
    "DEPTH_LIMITS",
    "EXCHANGE_HISTORY_LIMIT_PER_MIN",
    "EXCHANGE_REQUEST_LIMIT_PER_MIN",
    "CacheConfig",
    "FeedConfig",
]

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
# The timeframes the candle store aggregates; the exchange serves more, these are the ones the strategy uses.
CANDLE_INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")
EXCHANGE_REQUEST_LIMIT_PER_MIN = 2000
EXCHANGE_HISTORY_LIMIT_PER_MIN = 30


def _intervals(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"must be a list of intervals; got {value!r}")
    bad = [v for v in value if v not in CANDLE_INTERVALS]
    if bad:
        raise ValueError(f"must contain only {', '.join(CANDLE_INTERVALS)}; got {', '.join(map(str, bad))}")
    if len(set(value)) != len(value):
        raise ValueError(f"must not repeat an interval; got {', '.join(value)}")


def _positive_s(default: float, help: str) -> Any:
    return setting(default, help, unit="s", check=greater_than(0.0))


@attrs.frozen(kw_only=True)
class FeedConfig:
    """The WebSocket feed: which streams to subscribe and when a silent stream counts as stalled."""

    enable_websocket: bool = setting(True, "use the WebSocket feed; when false the cache polls REST only")
    auto_subscribe_ticker: bool = setting(True, "subscribe ticker.<symbol> (24 h stats, pushed every second)")
    auto_subscribe_depth: bool = setting(True, "subscribe depth.<symbol> and bookTicker.<symbol>, keep a local book")
    depth_levels: int = setting(100, "levels per side in the REST depth snapshot", check=one_of(DEPTH_LIMITS))
    subscribe_trades: bool = setting(True, "subscribe trade.<symbol>")
    subscribe_mark_price: bool = setting(True, "subscribe markPrice.<symbol> (perpetuals; every second)")
    subscribe_liquidations: bool = setting(True, "subscribe the all-market liquidation stream")
    subscribe_private: bool = setting(True, "subscribe the signed account streams when API keys are given")
    kline_intervals: tuple[str, ...] = setting(
        None, "kline.<interval>.<symbol> streams to subscribe", factory=lambda: CANDLE_INTERVALS, check=_intervals
    )
    # ticker and markPrice are pushed every second even when nothing changes, so a few seconds of silence is
    # a real stall; the other streams only speak when the market moves, so their limits are generous.
    ticker_stall_s: float = _positive_s(5.0, "ticker silence that counts as a stall")
    mark_price_stall_s: float = _positive_s(5.0, "markPrice silence that counts as a stall")
    book_ticker_stall_s: float = _positive_s(60.0, "bookTicker silence that counts as a stall (activity-driven)")
    depth_stall_s: float = _positive_s(60.0, "depth silence that counts as a stall (activity-driven)")
    trades_stall_s: float = _positive_s(300.0, "trade silence that counts as a stall (activity-driven)")
    kline_stall_s: float = _positive_s(120.0, "kline silence that counts as a stall (pushed on change)")
    connect_timeout_s: float = _positive_s(10.0, "WebSocket connect and handshake deadline")
    snapshot_timeout_s: float = _positive_s(10.0, "REST depth snapshot deadline")
    depth_buffer_frames: int = setting(
        2000, "depth frames buffered while the snapshot is fetched", check=at_least(1)
    )
    private_window_ms: int = setting(
        5000, "signature window of the private subscription", unit="ms", check=in_range(1, 60000)
    )


@attrs.frozen(kw_only=True)
class CacheConfig:
    """The price cache: freshness per source, REST fallback budget, candle bounds, liquidation clusters."""

    # A WebSocket value is "live" inside ws_fresh_s, still usable as a cached value until cache_max_age_s,
    # and a REST fallback value is usable until rest_max_age_s. Past all of them the price is Stale.
    ws_fresh_s: float = _positive_s(3.0, "age under which a WebSocket price is live")
    cache_max_age_s: float = _positive_s(10.0, "age under which the last WebSocket price may still be used")
    rest_max_age_s: float = _positive_s(10.0, "age under which a REST fallback price may be used")
    book_fresh_s: float = _positive_s(60.0, "age under which the book top counts as fresh (activity-driven)")
    rest_poll_interval_s: float = _positive_s(2.0, "REST fallback poll period per market while stale")
    rest_max_requests_per_min: int = setting(
        600, "REST fallback request budget", unit="req/min",
        check=in_range(1, EXCHANGE_REQUEST_LIMIT_PER_MIN),
    )
    kline_backfill_max_per_min: int = setting(
        20, "kline backfill request budget (the exchange allows 30/min on history)", unit="req/min",
        check=in_range(1, EXCHANGE_HISTORY_LIMIT_PER_MIN),
    )
    rest_timeout_s: float = _positive_s(5.0, "deadline of one REST fallback request")
    candle_history: int = setting(500, "closed candles kept per timeframe", check=in_range(1, 10000))
    candle_close_grace_s: float = setting(
        5.0, "how long after a candle's end its final frame may still arrive before it counts as a gap",
        unit="s", check=at_least(0.0),
    )
    cluster_bucket: Decimal = setting(
        Decimal("50"), "liquidation cluster price bucket size", unit="quote", check=greater_than(Decimal(0))
    )
    cluster_half_life_s: float = _positive_s(900.0, "half-life of a liquidation cluster's weight")
    cluster_max_buckets: int = setting(500, "liquidation buckets kept per market", check=in_range(1, 100000))
    burst_window_s: float = _positive_s(60.0, "window over which liquidation notional is summed for alerts")
    burst_threshold: Decimal = setting(
        Decimal("1000000"), "liquidation notional within the window that raises a burst alert",
        unit="quote", check=greater_than(Decimal(0)),
    )

    def __attrs_post_init__(self) -> None:
        if self.cache_max_age_s < self.ws_fresh_s:
            raise ValueError(
                f"cache_max_age_s must be at least ws_fresh_s ({self.ws_fresh_s}); got {self.cache_max_age_s}"
            )
